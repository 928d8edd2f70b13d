"""Training on several processes with PyTorch's DistributedDataParallel, started by torchrun.

centaur does not run its own cluster: torchrun (torch.distributed.run) starts one process per
device or CPU socket, on one machine or several, and sets RANK, WORLD_SIZE, MASTER_ADDR and
friends. Inside each process `distributed(learn)` joins the group (gloo on CPU; nccl as well
when CUDA is there) and adds DistributedTrainer, a callback that

- gives each process its share of every epoch (data/shard.py): each global batch of `bs`
  items is split among the processes, so a step sees what one single-process step sees;
- wraps the model in DistributedDataParallel while training, which averages the gradients,
  so every process takes the same optimizer step;
- validates each process's share of the validation set and gathers the predictions, so
  loss and metrics are those of the whole set, identical on every process;
- averages the training loss across processes.

Only the first process (rank 0) prints progress and writes checkpoints (callbacks.py asks
is_main_process); the recipes let it alone write the model directory. Everything else is the
single-process Learner, untouched: outside torchrun none of this runs.

On GPUs, batch norm layers become SyncBatchNorm, so they normalize with the statistics of the
whole batch, as one process does. PyTorch (2.14) has SyncBatchNorm for GPU tensors only (its
forward refuses CPU input), so on CPUs batch norm statistics stay per process, as in plain DDP:
a model with batch norm trained on N CPU processes matches one process only approximately,
the less so the smaller each process's part of a batch. The batch augmentation draws
the same parameters on every process (each for its own images), which keeps one random
state per run and makes resuming on N processes exact.
"""
import contextlib
import io
import os
import sys
import warnings

import torch

from ..core.errors import CentaurError
from .callbacks import Callback


def _group():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def rank():
    """This process's rank among those torchrun started (0 outside torchrun).

    >>> rank()
    0
    """
    dist = _group()
    return dist.get_rank() if dist is not None else int(os.environ.get("RANK", "0"))


def world_size():
    """How many processes train together (1 outside torchrun).

    >>> world_size()
    1
    """
    dist = _group()
    return dist.get_world_size() if dist is not None else int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process():
    """True in the one process that prints and writes files (rank 0; always outside torchrun)."""
    return rank() == 0


@contextlib.contextmanager
def quiet_unless_main():
    """Drop what the processes after the first write to stderr (notes, warnings), so each line shows once.

    Every process runs the same recipe and would say the same things; errors still reach the
    user, as exceptions. Also a decorator (contextlib's context managers are).

    >>> with quiet_unless_main():
    ...     print("columns: ...", file=sys.stderr)  # doctest: +SKIP
    """
    if is_main_process():
        yield
    else:
        with contextlib.redirect_stderr(io.StringIO()):
            yield


def cpu_threads():
    """CPU threads for this process: the machine's cores shared among the processes torchrun started on it.

    >>> cpu_threads() >= 1
    True
    """
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def init_distributed(device=None):
    """Join the process group torchrun describes in the environment; returns the world size.

    gloo carries CPU tensors; training on CUDA (device, a torch.device: the Learner's), nccl
    carries GPU tensors as well ("cpu:gloo,cuda:nccl"). Outside torchrun (no WORLD_SIZE in the
    environment) nothing happens and 1 is returned.

    >>> init_distributed()
    1
    """
    import torch.distributed as dist
    if _group() is not None:
        return dist.get_world_size()
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 1
    if not dist.is_available():
        raise CentaurError("this PyTorch build has no torch.distributed; install the standard build from "
                           "pytorch.org to train on several processes.")
    if device is not None and device.type == "cuda":
        # collectives on GPU tensors (nccl, and barrier) run on the current device: make it the Learner's
        torch.cuda.set_device(device)
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    return dist.get_world_size()


class DistributedTrainer(Callback):
    """Train with DistributedDataParallel on the processes of an initialized group (see module docstring).

    Added and removed by `distributed(learn)`; the model is wrapped only between before_train
    and after_train, so checkpoints, exports and callbacks always see the plain model.
    """

    order = -20  # before Recorder, ProgressCallback and checkpoints read the epoch log

    def __init__(self):
        self.sharded, self.ddp, self.module, self.loaders = False, None, None, None

    def before_fit(self):
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        learn = self.learn
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        train, valid = learn.dls.train, learn.dls.valid
        _check_sizes(train, valid, self.world)
        self.loaders, self.module = (train, valid), learn.model
        learn.dls.train = train.shard(self.rank, self.world)
        learn.dls.valid = valid.shard(self.rank, self.world, split_batches=False)
        self.sharded = True
        # built per fit, after freeze/unfreeze: DDP reduces the gradients of the parameters that
        # require them when it is built. It also copies rank 0's weights to every process.
        device = next(self.module.parameters()).device  # the Learner's: cuda:LOCAL_RANK, or the CPU
        if device.type == "cuda":
            self.module = learn.model = sync_batchnorm(self.module)
        # channels_last depthwise kernels (C, 1, k, k) have strides that differ from the bucket's only
        # along a dimension of size 1, the same memory layout; DDP still warns about it on every step
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        self.ddp = DistributedDataParallel(self.module, device_ids=[device] if device.type == "cuda" else None)

    def before_train(self):
        self.learn.model = self.ddp

    def after_train(self):
        import torch.distributed as dist
        self.learn.model = self.module
        # DDP gives every process rank 0's buffers before each forward, but the last forward then
        # updates each process's batch norm statistics with its own share: give them rank 0's again,
        # so every share of the validation set meets the model that rank 0 checkpoints and exports
        # (else the epoch's score and the final one differed: 13,680 vs 13,659 RMSE on txhousing).
        for buffer in self.module.buffers():
            dist.broadcast(buffer, 0)

    def after_validate(self):
        if self.sharded:
            n = len(self.loaders[1].dataset)
            self.learn.preds = gather_shares(self.learn.preds, n)
            self.learn.targets = gather_shares(self.learn.targets, n)

    def after_epoch(self):
        import torch.distributed as dist
        log = self.learn.epoch_log
        if self.sharded and "train_loss" in log:
            # every process ran as many batches of equal size: the mean of their means is the mean
            loss = torch.tensor([log["train_loss"]], dtype=torch.float64)
            dist.all_reduce(loss)
            log["train_loss"] = float(loss.item() / self.world)

    def after_fit(self):
        self.restore()

    def restore(self):
        """Put back the plain model and the whole loaders (also after an error inside fit)."""
        if self.sharded:
            self.learn.model = self.module
            self.learn.dls.train, self.learn.dls.valid = self.loaders
            self.sharded, self.ddp = False, None


def sync_batchnorm(model):
    """`model` with every batch norm layer synchronized across the processes (SyncBatchNorm), for GPUs.

    timm's converter, because torch's turns timm's BatchNormAct2d into a plain SyncBatchNorm and
    drops its activation. The layers keep their parameters and buffers (the optimizer still
    holds them) and their state_dict names, so checkpoints and exports are unchanged; a model
    already converted (the second phase of fine_tune) is returned as it is.

    >>> type(sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm1d(3)))[0]).__name__
    'SyncBatchNorm'
    """
    from timm.layers import convert_sync_batchnorm
    from torch.nn.modules.batchnorm import _BatchNorm
    if any(isinstance(m, _BatchNorm) and not isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()):
        return convert_sync_batchnorm(model)
    return model


def _check_sizes(train, valid, world):
    bs = train.bs
    if bs % world:
        raise CentaurError(f"the batch size {bs} cannot be split evenly among {world} processes; give a multiple of "
                           f"{world} (the batch size is the total of one step, split among the processes).")
    if len(train.dataset) < world or len(valid.dataset) < world:
        raise CentaurError(f"{len(train.dataset)} training and {len(valid.dataset)} validation items are too few for "
                           f"{world} processes; each needs at least one of each. Use fewer processes.")


def gather_shares(tensor, n):
    """Every process's contiguous share of n items (data/shard.py), concatenated in rank order.

    all_gather needs equal shapes, so each share is padded to the largest and cut back after.

    >>> preds = gather_shares(my_preds, len(valid_ds))  # doctest: +SKIP
    """
    import torch.distributed as dist
    from ..data.shard import shard_range
    world = dist.get_world_size()
    sizes = [stop - start for start, stop in (shard_range(n, r, world) for r in range(world))]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[:len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


@contextlib.contextmanager
def distributed(learn):
    """Train `learn` on all the processes torchrun started; outside torchrun, nothing changes.

    Run the script with `torchrun --nproc-per-node 2 train.py` (several machines: torchrun's
    --nnodes and --rdzv-endpoint); every process runs the same code. The group is joined on
    entry and left on exit if this context joined it.

    >>> with distributed(learn):  # doctest: +SKIP
    ...     learn.fine_tune(3, checkpoint="runs/ckpt.safetensors")
    >>> if is_main_process():     # doctest: +SKIP
    ...     export(learn, "models/emoji")
    """
    joined = _group() is None
    if init_distributed(learn.device) <= 1:
        yield learn
        return
    import torch.distributed as dist
    trainer = DistributedTrainer()
    finished = False
    try:
        with learn.added_cbs([trainer]):
            try:
                yield learn
            finally:
                trainer.restore()
        finished = True
    finally:
        if joined:
            if finished:
                # leave together: a process that tore its group down while another still held the
                # connections was aborted by gloo ("terminate called without an active exception")
                dist.barrier()
            dist.destroy_process_group()


def launch(argv, nproc, module="centaur.cli"):
    """Run `python -m module *argv` on nproc processes of this machine through torchrun; returns the exit status.

    The rendezvous is on this machine only (torchrun --standalone: a free port on localhost).
    For several machines run torchrun yourself (see the README). A process that fails makes
    torchrun stop the others; the status is then the first failure's.

    >>> launch(["train", "data/emoji", "--out", "models/emoji"], nproc=2)  # doctest: +SKIP
    0
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    # torchrun would set 1 thread per process and warn; the recipes pick cpu_threads() themselves
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    args = parse_args(["--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc), "--module", module])
    # set after parsing: torchrun's parser would read the command's own options (--nproc) as its own
    args.training_script_args = [str(a) for a in argv]
    try:
        run(args)
    except SignalException:
        # Ctrl-C reached the workers too (one process group); each kept its checkpoint and said so
        raise KeyboardInterrupt from None
    except ChildFailedError as e:
        codes = [f.exitcode for f in e.failures.values()]
        # a worker's own message (e.g. "error: ...") is already on stderr; torchrun's summary adds nothing
        code = next((c for c in codes if c and c > 0), 1)
        print(f"{len(codes)} of {nproc} processes failed (exit status {code}); see their messages above.",
              file=sys.stderr)
        return code
    return 0
