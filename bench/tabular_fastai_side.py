"""fastai side of the tabular benchmark; runs in the bench venv (.bench-venv, fastai 2.8.12).

    .bench-venv/bin/python bench/tabular_fastai_side.py hotel --features F.parquet \
        --columns C.json --out bench/out/tabular_fastai_hotel.json --preds P.npy
    .bench-venv/bin/python bench/tabular_fastai_side.py throughput --table bench/out/rossmann_like.parquet \
        --columns C.json --out bench/out/tabular_fastai_throughput.json

hotel: the feature table is written by bench/tabular_hotel.py (date parts already added by
centaur's add_date_parts, so both sides see the very same columns); the columns file names
the target, the categorical and continuous columns and the train/valid row positions.
TabularPandas(procs=[Categorify, FillMissing, Normalize], splits=IndexSplitter-style
positions), tabular_learner(layers), fit_one_cycle(epochs, lr). The validation predictions
go to --preds (float32 .npy, validation order) so that the driver scores every side with the
same function.

throughput: the raw generated table; fastai's own add_datepart, then TabularPandas and the
DataLoaders (timed together as data preparation), then one epoch of fit_one_cycle (timed:
the training loop alone and the whole fit with its validation pass). --max-batches N stops
after N training batches and reports the time per batch instead (for when a full epoch is
too slow). Peak RSS is this process's ru_maxrss.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")  # fastai's and torch's deprecation notes would bury the figures


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build_learner(df, cols, splits, bs, layers, seed):
    from fastai.tabular.all import (Categorify, FillMissing, Normalize, RegressionBlock, TabularPandas,
                                    tabular_learner)
    from fastai.torch_core import set_seed
    set_seed(seed)
    to = TabularPandas(df, procs=[Categorify, FillMissing, Normalize], cat_names=list(cols["cat"]),
                       cont_names=list(cols["cont"]), y_names=cols["target"], y_block=RegressionBlock(),
                       splits=splits)
    dls = to.dataloaders(bs=bs)
    learn = tabular_learner(dls, layers=list(layers), metrics=None)
    return to, dls, learn


CHUNK = 50  # batches per timed chunk (both sides)


class _Timer:
    """A fastai callback: training-loop time, and an early stop after max_batches batches.

    With budget_s, after 50 batches the epoch is projected from the time per batch; if it
    would run past budget_s, the loop stops at max(200, batches done) instead of finishing.
    """

    def __new__(cls, max_batches=None, budget_s=None):
        from fastai.callback.core import Callback, CancelFitException

        class Timer(Callback):
            order = 99

            def before_fit(self):
                self.max_batches, self.stopped_early = max_batches, False

            def before_train(self):
                self.t0 = self.tc = time.perf_counter()
                self.n, self.chunks = 0, []

            def after_batch(self):
                if not self.training:
                    return
                self.n += 1
                if self.n % CHUNK == 0:  # time per batch over each CHUNK batches: bursts of load show up
                    now = time.perf_counter()
                    self.chunks.append(1000 * (now - self.tc) / CHUNK)
                    self.tc = now
                if budget_s and self.n == 50 and self.max_batches is None:
                    projected = (time.perf_counter() - self.t0) / 50 * len(self.dls.train)
                    if projected > budget_s:
                        self.max_batches = 200
                if self.max_batches and self.n >= self.max_batches:
                    self.train_s = time.perf_counter() - self.t0
                    self.stopped_early = True
                    raise CancelFitException()

            def after_train(self):
                self.train_s = time.perf_counter() - self.t0

        return Timer()


def run_hotel(args):
    import pandas as pd
    import torch
    torch.set_num_threads(args.threads)
    cols = json.loads(Path(args.columns).read_text())
    df = pd.read_parquet(args.features)
    splits = (list(cols["train_idx"]), list(cols["valid_idx"]))
    t0 = time.perf_counter()
    to, dls, learn = build_learner(df, cols, splits, args.bs, cols["layers"], args.seed)
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(cols["epochs"], cols["lr"])
    train_s = time.perf_counter() - t0
    with learn.no_bar():
        preds, targets = learn.get_preds()
    preds = preds.view(-1).numpy().astype(np.float32)
    # the validation loader keeps row order (no shuffle), so preds line up with valid_idx
    expect = df[cols["target"]].to_numpy()[np.asarray(cols["valid_idx"])]
    assert np.allclose(targets.view(-1).numpy(), expect, rtol=1e-5, atol=1e-3), "fastai valid order differs"
    np.save(args.preds, preds)
    out = {"side": "fastai", "fastai": _version(), "torch": torch.__version__, "threads": args.threads,
           "prep_s": prep_s, "train_s": train_s, "n_train": len(splits[0]), "n_valid": len(splits[1]),
           "cat_names": list(to.cat_names), "cont_names": list(to.cont_names), "peak_rss_mb": peak_rss_mb()}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


def run_throughput(args):
    import pandas as pd
    import torch
    from fastai.tabular.core import add_datepart
    torch.set_num_threads(args.threads)
    cols = json.loads(Path(args.columns).read_text())
    t0 = time.perf_counter()
    df = pd.read_parquet(args.table)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    valid_mask = (df[cols["date"]] >= pd.Timestamp(cols["valid_from"])).to_numpy()
    df = add_datepart(df, cols["date"], drop=True)
    splits = (np.flatnonzero(~valid_mask).tolist(), np.flatnonzero(valid_mask).tolist())
    to, dls, learn = build_learner(df, cols, splits, args.bs, cols["layers"], args.seed)
    prep_s = time.perf_counter() - t0
    timer = _Timer(args.max_batches, args.budget_s)
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, cols["lr"], cbs=[timer])
    fit_s = time.perf_counter() - t0
    n_batches = timer.n
    out = {"side": "fastai", "fastai": _version(), "torch": torch.__version__, "threads": args.threads,
           "bs": args.bs, "n_train": len(splits[0]), "n_valid": len(splits[1]), "read_s": read_s,
           "prep_s": prep_s, "train_loop_s": timer.train_s, "train_batches": n_batches,
           "batches_per_epoch": len(dls.train), "per_batch_ms": 1000 * timer.train_s / max(1, n_batches),
           "chunk_ms": timer.chunks, "fit_s": None if timer.stopped_early else fit_s, "stopped_early": timer.stopped_early,
           "max_batches": timer.max_batches,
           "cat_names": list(to.cat_names), "cont_names": list(to.cont_names), "peak_rss_mb": peak_rss_mb()}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


def _version():
    import fastai
    return fastai.__version__


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["hotel", "throughput"])
    p.add_argument("--features", type=Path, help="hotel: the feature table (Parquet)")
    p.add_argument("--table", type=Path, help="throughput: the raw table (Parquet)")
    p.add_argument("--columns", type=Path, required=True)
    p.add_argument("--preds", type=Path)
    p.add_argument("--bs", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-batches", type=int, default=None)
    p.add_argument("--budget-s", type=float, default=None,
                   help="throughput: stop at 200 batches if the epoch is projected to take longer")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.mode == "hotel":
        run_hotel(args)
    else:
        run_throughput(args)


if __name__ == "__main__":
    sys.exit(main())
