"""Scaling of training over processes (DDP, gloo) and of batch prediction over worker processes, on this machine.

    .venv/bin/python bench/distributed_scaling.py --md docs/benchmarks_distributed.md

Training: the spine's settings (data/emoji, lite0 pretrained, 128 px, total batch 32, seed 42),
body unfrozen, fit_one_cycle over EPOCHS epochs; images/s of each epoch's training part
(validation excluded), the first epoch dropped as warm-up, median of the rest, on 1 process
(all cores as threads) and on 2 (torchrun; the cores shared: cpu_threads()). Runs alternate
1, 2, 1, 2, ... ROUNDS times and the medians are quoted. Efficiency = speed-up / processes.

Batch prediction: `predict_to_file` of all data/emoji images into a CSV with models/emoji,
workers=1 (one process: a decoding thread beside the model on all cores) and workers=2
(two processes, each a share of the threads), wall time including start-up of the workers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args):
    """One training run (on this process, or on each process torchrun started); rank 0 writes the JSON."""
    import torch
    from centaur.core.seed import set_seed
    from centaur.train.callbacks import Callback
    from centaur.train.distributed import cpu_threads, distributed, is_main_process, world_size
    from centaur.vision.learner import vision_learner
    from centaur.vision.recipes import image_datablock

    torch.set_num_threads(cpu_threads())
    set_seed(42)
    dblock, _ = image_datablock(args.data, size=args.size, seed=42)
    dls = dblock.dataloaders(args.data, bs=args.bs, seed=42)
    learn = vision_learner(dls, "lite0", progress=False)
    learn.unfreeze()

    class Clock(Callback):
        def before_fit(self):
            self.rates = []

        def before_train(self):
            self.t0, self.n = time.perf_counter(), 0

        def after_batch(self):
            if self.learn.training:
                self.n += len(self.learn.yb) * world_size()  # every process's share of the step

        def after_train(self):
            self.rates.append(self.n / (time.perf_counter() - self.t0))

    clock = Clock()
    with distributed(learn):
        learn.fit_one_cycle(args.epochs, 1e-3, cbs=[clock])
    if is_main_process():
        Path(args.out).write_text(json.dumps({"processes": world_size(), "threads": torch.get_num_threads(),
                                              "epoch_images_per_s": clock.rates}))


def train_run(nproc, args, out):
    cmd = [str(Path(__file__)), "--worker", "--data", args.data, "--size", str(args.size), "--bs", str(args.bs),
           "--epochs", str(args.epochs), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    if nproc == 1:
        subprocess.run([sys.executable, *cmd], check=True, env=env, cwd=ROOT)
    else:
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                        str(nproc), *cmd], check=True, env=env, cwd=ROOT)
    result = json.loads(Path(out).read_text())
    return result, statistics.median(result["epoch_images_per_s"][1:])


def predict_run(workers, args, out):
    code = ("import sys, time; from centaur.batch import predict_to_file; t = time.perf_counter(); "
            f"s = predict_to_file({args.model!r}, [{args.data!r}], {str(out)!r}, workers={workers}); "
            "print(s['rows'] / (time.perf_counter() - t))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", default="data/emoji")
    parser.add_argument("--model", default="models/emoji")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="bench/out/distributed.json")
    parser.add_argument("--md", default="docs/benchmarks_distributed.md")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    train = {1: [], 2: []}
    predict = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n in (1, 2):
                result, rate = train_run(n, args, Path(tmp) / f"train{n}_{r}.json")
                train[n].append({**result, "median_images_per_s": rate})
                print(f"train, {n} process(es): {rate:.1f} images/s", file=sys.stderr)
            if Path(args.model).is_dir():
                for w in (1, 2):
                    rate = predict_run(w, args, Path(tmp) / f"pred{w}_{r}.csv")
                    predict[w].append(rate)
                    print(f"predict, {w} worker(s): {rate:.1f} images/s", file=sys.stderr)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    t1 = statistics.median(x["median_images_per_s"] for x in train[1])
    t2 = statistics.median(x["median_images_per_s"] for x in train[2])
    summary = {"cpus": os.cpu_count(), "settings": vars(args), "train": train, "predict": predict,
               "load_before": load_before, "load_after": load_after}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    lines = [
        "# Benchmarks: training on 2 processes, predicting with 2 workers",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Written by `bench/distributed_scaling.py` "
        f"({args.rounds} rounds, alternating; medians). Load average before {' '.join(load_before)}, "
        f"after {' '.join(load_after)}.",
        "",
        "**Caveat: 2 cores bound this.** One process already runs 2 threads on the 2 cores; two processes run 1 "
        "thread each on the same 2 cores. So the best 2 processes can do here is to match one process (speed-up "
        "1.00x, efficiency 50%), and what falls short of that is the cost of DistributedDataParallel (a gradient "
        "all-reduce over gloo each step, half-size batches that use a core less well). The figures say what that "
        "cost is, not how training scales on machines with more cores or GPUs.",
        "",
        f"## Training ({args.data}, lite0 pretrained, body unfrozen, {args.size} px, total batch {args.bs})",
        "",
        "| processes | threads each | images/s (median) | speed-up | efficiency |",
        "|---|---|---|---|---|",
        f"| 1 | {train[1][0]['threads']} | {t1:.1f} | 1.00x | 100% |",
        f"| 2 | {train[2][0]['threads']} | {t2:.1f} | {t2 / t1:.2f}x | {t2 / t1 / 2:.0%} |",
        "",
        "Images/s per epoch's training part, first epoch dropped as warm-up; each process takes half of every "
        "batch of 32 and the gradients are averaged, so both runs take the same steps.",
    ]
    if predict[1]:
        p1, p2 = statistics.median(predict[1]), statistics.median(predict[2])
        lines += [
            "",
            f"## Batch prediction ({args.model} on every image of {args.data}, into CSV)",
            "",
            "| workers | images/s (median, start-up included) |",
            "|---|---|",
            f"| 1 (a decoding thread beside the model, all cores) | {p1:.1f} |",
            f"| 2 (processes, a share of the threads each) | {p2:.1f} |",
            "",
            f"Default: `--workers 1`. {'Two processes are faster here' if p2 > 1.05 * p1 else 'Two do not pay here'} "
            f"({p2 / p1:.2f}x): with one process the model already uses both cores and decoding runs in a "
            "thread beside it (Pillow releases the GIL), and each extra process loads its own model. More "
            "workers pay on machines with more cores than one model's forward pass keeps busy.",
        ]
    Path(args.md).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
