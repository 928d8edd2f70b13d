"""Run by test_train_distributed.py, on one process or under torchrun: fine-tune a tiny model and save it.

usage: python distributed_worker.py OUT_DIR [--bs 12] [--crash-at PHASE,EPOCH] [--resume]
The weights go to OUT_DIR/weights.safetensors and the epoch logs to OUT_DIR/epochs.json, from rank 0.
"""
import argparse
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from centaur.train.callbacks import Callback
from centaur.train.distributed import distributed, is_main_process
from centaur.train.learner import Learner

from conftest import two_colour_dls


def make_learner(bs=12, n_train=48, n_valid=17):
    """Shuffled data, no batch norm and no dropout: a step's gradient is then the same whether one
    process sees the whole batch or two processes see half each."""
    dls = two_colour_dls(n_train, n_valid, bs=bs, seed=7)
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Linear(8, 2)
    model = nn.Sequential(body, head)
    return Learner(dls, model, metrics=["accuracy"], progress=False,
                   param_groups=[list(body.parameters()), list(head.parameters())])


class Crash(Callback):
    """Stop every process hard (no clean-up) when (phase, epoch) starts, as a killed job would."""

    def __init__(self, phase, epoch):
        self.at = (phase, epoch)

    def before_epoch(self):
        if (self.learn.phase, self.learn.epoch) == self.at:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.barrier()  # rank 0 has written its checkpoint of the epoch before
            os._exit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--bs", type=int, default=12)
    parser.add_argument("--crash-at")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    learn = make_learner(args.bs)
    cbs = [Crash(*map(int, args.crash_at.split(",")))] if args.crash_at else []
    with distributed(learn):
        learn.fine_tune(2, base_lr=1e-2, freeze_epochs=1, lr_mult=10, cbs=cbs,
                        checkpoint=out / "checkpoint.safetensors", resume=args.resume)
    if is_main_process():
        save_file({k: v.contiguous() for k, v in learn.model.state_dict().items()}, str(out / "weights.safetensors"))
        (out / "epochs.json").write_text(json.dumps(learn.recorder.epochs))


if __name__ == "__main__":
    main()
