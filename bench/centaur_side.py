"""centaur side of the centaur-vs-fastai benchmark: the same phases and JSON keys as fastai_side.py.

    .venv/bin/python bench/centaur_side.py --data data/emoji --valid-list VALID.txt \
        --size 128 --bs 32 --threads 2 --epochs 3 --seed 42 --out bench/out/centaur.json

Each phase runs in its own child process so its peak RSS is its own:
  frozen    vision_learner (body frozen), fit_one_cycle(1, 2e-3); images/s of the training part.
  unfrozen  unfreeze, fit_one_cycle(1, [1e-5, 1e-3]); same measure.
  finetune  fine_tune(epochs) = 1 frozen + `epochs` unfrozen epochs, wall time with validation;
            then predict latency (Predictor on the exported model) against the bare forward.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--valid-list", required=True, type=Path)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--predict-calls", type=int, default=30)
    p.add_argument("--scratch", action="store_true", help="finetune phase from random weights (same split)")
    p.add_argument("--out", type=Path)
    p.add_argument("--phase", choices=["frozen", "unfrozen", "finetune"])
    p.add_argument("--phases", default="frozen,unfrozen,finetune")
    return p.parse_args(argv)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def median_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def build(args, pretrained=True):
    from centaur.data.augment import aug_transforms
    from centaur.data.block import DataBlock
    from centaur.data.blocks import CategoryBlock, ImageBlock
    from centaur.data.getters import get_image_files, parent_label
    from centaur.data.splitters import FuncSplitter
    from centaur.data.transforms import Resize
    from centaur.vision.learner import vision_learner
    root = args.data.resolve()
    valid = {l.strip() for l in args.valid_list.read_text().splitlines() if l.strip()}
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=FuncSplitter(lambda p: Path(p).relative_to(root).as_posix() in valid),
                       item_tfms=Resize(args.size), batch_tfms=[aug_transforms()])
    t = time.perf_counter()
    dls = dblock.dataloaders(root, bs=args.bs, seed=args.seed)
    dls_seconds = time.perf_counter() - t
    learn = vision_learner(dls, "lite0", pretrained=pretrained, metrics=["accuracy"], progress=False)
    return learn, dls_seconds


def timer_callback():
    from centaur.train.callbacks import Callback

    class TrainTimer(Callback):
        """Times the training part of each epoch (validation excluded)."""

        def before_fit(self):
            self.epochs = []

        def before_train(self):
            self.t0, self.images = time.perf_counter(), 0

        def after_batch(self):
            if self.learn.training:
                self.images += len(self.learn.yb)

        def after_train(self):
            self.epochs.append({"seconds": time.perf_counter() - self.t0, "images": self.images})

    return TrainTimer()


def phase_train_epoch(args, unfreeze):
    learn, dls_seconds = build(args)
    timer = timer_callback()
    if unfreeze:
        learn.unfreeze()
        lr = [2e-3 / 100 / 2, 2e-3 / 2]  # the rates fine_tune uses for its unfrozen epochs
    else:
        lr = 2e-3
    learn.fit_one_cycle(1, lr, cbs=[timer])
    e = timer.epochs[0]
    return {"dls_build_seconds": dls_seconds, "train_seconds": e["seconds"], "train_images": e["images"],
            "images_per_s": e["images"] / e["seconds"], "peak_rss_mb": rss_mb()}


def phase_finetune(args):
    import tempfile

    import torch
    from centaur.inference import Predictor
    from centaur.train.export import export
    learn, dls_seconds = build(args, pretrained=not args.scratch)
    if args.scratch:
        learn.unfreeze()
    t = time.perf_counter()
    if args.scratch:
        learn.fine_tune(args.epochs + 1, freeze_epochs=0, lr_mult=1)  # same number of epochs, all unfrozen
    else:
        learn.fine_tune(args.epochs)
    res = {"dls_build_seconds": dls_seconds, "fine_tune_seconds": time.perf_counter() - t,
           "peak_rss_mb_after_fine_tune": rss_mb()}
    log = learn.recorder.epochs
    res.update(fine_tune_history=log, fine_tune_accuracy=log[-1]["accuracy"],
               fine_tune_valid_loss=log[-1]["valid_loss"], fine_tune_epochs_total=len(log))
    with tempfile.TemporaryDirectory() as tmp:
        export(learn, tmp)
        predictor = Predictor(tmp, threads=args.threads, batch_size=args.bs)
        files = list(learn.dls.valid_ds.xs)
        res["predict_one_ms"] = median_ms(lambda: predictor.predict(files[0]), args.predict_calls)
        times = []
        for _ in range(4):
            t = time.perf_counter()
            list(predictor.predict_many(files))
            times.append(time.perf_counter() - t)
        res["batched_images_per_s"] = len(files) / statistics.median(times[1:])
        # the bare forward: the exported model as plain PyTorch loads it (eval mode, channels_last),
        # without the BatchNorm folding the Predictor adds (the folded one is reported beside it).
        # Batched, it runs the same validation images in the same batches as predict_many, already
        # decoded and normalized: what is left between the two is reading and decoding files.
        from centaur.models.model_dir import load_model_dir
        bare = load_model_dir(tmp)[0].to(memory_format=torch.channels_last)
        x1 = torch.randn(1, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
        xs = torch.stack([predictor.preprocess(f) for f in files]).float().div(255)
        xs = ((xs - predictor.mean) / predictor.std).contiguous(memory_format=torch.channels_last)
        batches = [xs[i:i + args.bs] for i in range(0, len(xs), args.bs)]
        with torch.inference_mode():
            for key, model in (("bare_forward", bare), ("folded_forward", predictor.model)):
                res[f"{key}_one_ms"] = median_ms(lambda: model(x1), args.predict_calls)
                ms = median_ms(lambda: [model(b) for b in batches], 5, warmup=1)
                res[f"{key}_batched_images_per_s"] = len(files) / (ms / 1000)
    return res


def run_phase(args):
    import torch
    from centaur.core.seed import set_seed
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    t = time.perf_counter()
    cpu0 = sum(os.times()[:4])
    res = {"frozen": lambda: phase_train_epoch(args, False), "unfrozen": lambda: phase_train_epoch(args, True),
           "finetune": lambda: phase_finetune(args)}[args.phase]()
    res["phase_wall_seconds"] = time.perf_counter() - t
    res["phase_cpu_seconds"] = sum(os.times()[:4]) - cpu0
    return res


def driver(args):
    import timm
    import torch
    import centaur
    t_all = time.perf_counter()
    out = {"tool": "centaur", "versions": {"centaur": centaur.__version__, "torch": torch.__version__,
                                           "timm": timm.__version__},
           "size": args.size, "bs": args.bs, "threads": args.threads, "epochs": args.epochs, "seed": args.seed,
           "scratch": args.scratch, "loadavg_1min_start": os.getloadavg()[0]}
    per = {}
    for ph in [p for p in args.phases.split(",") if p]:
        cmd = [sys.executable, os.path.abspath(__file__), "--phase", ph]
        for k in ("data", "valid_list", "size", "bs", "threads", "epochs", "seed", "predict_calls"):
            cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
        if args.scratch:
            cmd.append("--scratch")
        cp = subprocess.run(cmd, capture_output=True, text=True)
        if cp.returncode != 0:
            sys.stderr.write(cp.stdout + cp.stderr)
            raise SystemExit(f"phase {ph} failed ({cp.returncode})")
        per[ph] = json.loads(cp.stdout.strip().splitlines()[-1])
        print(f"[centaur_side] {ph}: {per[ph]['phase_wall_seconds']:.1f}s", file=sys.stderr)
    out["phases"] = per
    if "frozen" in per:
        out["frozen_images_per_s"] = per["frozen"]["images_per_s"]
        out["peak_rss_mb_frozen"] = per["frozen"]["peak_rss_mb"]
    if "unfrozen" in per:
        out["unfrozen_images_per_s"] = per["unfrozen"]["images_per_s"]
        out["peak_rss_mb_unfrozen"] = per["unfrozen"]["peak_rss_mb"]
    if "finetune" in per:
        f = per["finetune"]
        for k in ("fine_tune_seconds", "fine_tune_accuracy", "fine_tune_valid_loss", "fine_tune_epochs_total",
                  "predict_one_ms", "bare_forward_one_ms", "batched_images_per_s",
                  "bare_forward_batched_images_per_s", "folded_forward_one_ms",
                  "folded_forward_batched_images_per_s", "dls_build_seconds"):
            out[k] = f[k]
        out["peak_rss_mb_fine_tune"] = f["peak_rss_mb_after_fine_tune"]
    out["peak_rss_mb"] = max([out[k] for k in ("peak_rss_mb_frozen", "peak_rss_mb_unfrozen",
                                               "peak_rss_mb_fine_tune") if k in out] or [0])
    out["total_wall_seconds"] = time.perf_counter() - t_all
    out["loadavg_1min_end"] = os.getloadavg()[0]
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


def main(argv=None):
    args = parse_args(argv)
    if args.phase:
        import warnings
        warnings.filterwarnings("ignore")
        print(json.dumps(run_phase(args), default=str))
    else:
        driver(args)


if __name__ == "__main__":
    main()
