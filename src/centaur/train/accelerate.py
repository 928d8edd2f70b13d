"""Options that make a step cheaper where the hardware helps: bf16 autocast and torch.compile, as callbacks.

Both are off by default. bf16 autocast pays on GPUs with bf16 units (Ampere and later) and
on CPUs with AMX; elsewhere it can be slower than float32. torch.compile pays after its
compile time (tens of seconds) on long runs; on a short fine-tune it costs more than it saves.
Neither is needed by, or exercised on a GPU in, the tests.
"""
import torch

from .callbacks import Callback


class MixedPrecision(Callback):
    """Forward passes and the loss under torch.autocast in bfloat16; backward and the step in float32.

    bf16 has float32's range, so no loss scaling is needed (unlike float16). Validation
    predictions are turned back to float32 before loss and metrics.

    >>> learn.fine_tune(3, cbs=[MixedPrecision()])  # doctest: +SKIP
    """

    order = -5

    def __init__(self, dtype=torch.bfloat16):
        self.dtype, self.ctx = dtype, None

    def _enter(self):
        if self.ctx is None:
            device = next(self.learn.model.parameters()).device.type
            self.ctx = torch.autocast(device_type=device, dtype=self.dtype)
            self.ctx.__enter__()

    def _exit(self):
        if self.ctx is not None:
            self.ctx.__exit__(None, None, None)
            self.ctx = None

    def before_batch(self):
        if self.learn.training:
            self._enter()

    def after_loss(self):
        self._exit()  # backward runs outside autocast, as PyTorch recommends

    def before_validate(self):
        self._enter()

    def after_validate(self):
        self._exit()
        self.learn.preds = self.learn.preds.float()

    def after_fit(self):
        self._exit()


class CompileModel(Callback):
    """Compile the model with torch.compile when fit starts (in place: weights and checkpoints unchanged).

    nn.Module.compile keeps the module and its state_dict keys, so checkpoints and exports
    are those of the plain model. kwargs go to torch.compile (mode="max-autotune", ...).

    >>> learn.fit_one_cycle(10, 1e-3, cbs=[CompileModel()])  # doctest: +SKIP
    """

    order = -30  # before DistributedTrainer wraps the model

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def before_fit(self):
        if getattr(self.learn.model, "_compiled_call_impl", None) is None:
            self.learn.model.compile(**self.kwargs)
