"""Where one training step of the tabular model goes: the Learner against bare loops and the matmul floor.

    .venv/bin/python bench/tabular_step_profile.py --out bench/out/tabular_step_profile.json

On a Rossmann-shaped table (bench/tabular_data.py, --stores x --days rows, batch 1024, layers
[200, 100], the throughput benchmark's columns) it times, in one process and interleaved round
by round so a neighbour's burst of load hits every variant alike:

  loader          drawing a shuffled batch (index_select of the whole-table tensors)
  matmul_floor    the three Linear layers' forward and backward alone, on the same shapes
  fwd_bwd         the model's forward, loss and backward (no optimizer step)
  step_loop       a full step with torch's default CPU AdamW (a Python loop over tensors)
  step_fused      a full step with AdamW(fused=True), as Learner.create_opt builds it
  learner         Learner.fit_one_cycle, per batch (callbacks, schedule, loss bookkeeping)

Each figure is the fastest of --rounds chunks of 10 steps (ms per step): the cost without
interference; a shared machine makes means meaningless. fastai's time per batch comes from
bench/tabular_throughput.py; 0.2x of it is the issue's target.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tabular_data  # noqa: E402
from tabular_throughput import CAT, CONT  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", type=int, default=1000)
    p.add_argument("--days", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", type=Path, default=HERE / "out/tabular_step_profile.json")
    args = p.parse_args(argv)

    import torch
    from torch import nn
    from centaur.data.dates import add_date_parts
    from centaur.data.tabular import TabularDataLoaders
    from centaur.tabular.learner import tabular_learner
    from centaur.train.callbacks import Callback, CancelFit

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    df = tabular_data.rossmann_like(args.stores, args.days, 0)
    df, _ = add_date_parts(df, tabular_data.ROSSMANN_DATE, drop=True)
    n = len(df)
    with contextlib.redirect_stderr(io.StringIO()):  # the processors' notes about this small table
        dls = TabularDataLoaders.from_df(df, tabular_data.ROSSMANN_TARGET, CAT, CONT, "regression",
                                         np.arange(n - 10_000), np.arange(n - 10_000, n), bs=1024, seed=0)
    learn = tabular_learner(dls, layers=(200, 100), progress=False)
    loss_func = learn.loss_func
    batches = iter(())

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(dls.train)
            return next(batches)

    def step_with(**opt_kwargs):
        model = copy.deepcopy(learn.model).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01,
                                **opt_kwargs)

        def step():
            (x_cat, x_cont), y = next_batch()
            loss_func(model(x_cat, x_cont), y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    def fwd_bwd():
        model = copy.deepcopy(learn.model).train()

        def step():
            (x_cat, x_cont), y = next_batch()
            loss_func(model(x_cat, x_cont), y).backward()
            model.zero_grad(set_to_none=True)
        return step

    def matmul_floor():
        n_in = learn.model.n_emb + learn.model.n_cont
        layers = [nn.Linear(n_in, 200, bias=False), nn.Linear(200, 100, bias=False), nn.Linear(100, 1)]
        x = torch.randn(1024, n_in, requires_grad=True)  # the input needs its gradient: the embeddings learn

        def step():
            h = x
            for layer in layers:
                h = layer(h)
            h.sum().backward()
            x.grad = None
            for layer in layers:
                layer.zero_grad(set_to_none=True)
        return step

    variants = {"loader": next_batch, "matmul_floor": matmul_floor(), "fwd_bwd": fwd_bwd(),
                "step_loop": step_with(foreach=False), "step_fused": step_with(fused=True)}
    best = {k: float("inf") for k in variants}
    best["learner"] = float("inf")

    class ChunkTimer(Callback):
        order = 99

        def before_train(self):
            self.n = 0

        def after_batch(self):  # batches 4 to 13 timed, as the others: 3 to warm up, 10 timed
            if not self.learn.training:
                return
            self.n += 1
            if self.n == 3:
                self.t0 = time.perf_counter()
            elif self.n == 13:
                best["learner"] = min(best["learner"], (time.perf_counter() - self.t0) / 10 * 1000)
                raise CancelFit()

    for _ in range(args.rounds):
        for name, f in variants.items():
            for _ in range(3):
                f()
            t0 = time.perf_counter()
            for _ in range(10):
                f()
            best[name] = min(best[name], (time.perf_counter() - t0) / 10 * 1000)
        learn.fit_one_cycle(1, 1e-2, cbs=[ChunkTimer()])
    result = {"ms_per_step_fastest_chunk": {k: round(v, 3) for k, v in best.items()},
              "rows": n, "threads": args.threads, "rounds": args.rounds, "load_after": os.getloadavg(),
              "embedding_widths": learn.model.emb_szs, "n_in": learn.model.n_emb + learn.model.n_cont}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
