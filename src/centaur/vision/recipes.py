"""The main job: fine-tune a pretrained classifier on a folder or CSV with sensible defaults."""
import json
import os
import sys
from pathlib import Path

import torch

from ..core.device import resolve_device
from ..core.errors import CentaurError
from ..core.log import warn
from ..core.seed import set_seed
from ..data.augment import aug_transforms
from ..data.block import DataBlock
from ..data.blocks import CategoryBlock, ImageBlock
from ..data.getters import ColReader, get_image_files, parent_label, read_table
from ..data.splitters import FolderSplitter, RandomSplitter
from ..data.transforms import Resize
from ..train.checkpoint import check_resume
from ..train.distributed import cpu_threads, distributed, is_main_process, quiet_unless_main
from ..train.export import export, split_record
from ..train.metrics import accuracy, confidence_interval, f1_macro, majority_baseline
from .learner import vision_learner


def image_datablock(data, size=128, resize="squish", valid_pct=0.2, seed=42, augment=True,
                    file_col="file", label_col="label"):
    """The DataBlock for a folder of class subfolders (train/ and valid/ honoured) or a CSV."""
    data = Path(data)
    batch_tfms = [aug_transforms()] if augment else []
    if data.is_file():
        df = read_table(data)
        for col in (file_col, label_col):
            if col not in df.columns:
                from ..core.errors import did_you_mean
                raise CentaurError(f"{str(data)!r} has no column {col!r}; columns are {list(df.columns)}."
                                   f"{did_you_mean(col, df.columns)} Use --file-col / --label-col.")
        return DataBlock(blocks=(ImageBlock, CategoryBlock), get_x=ColReader(file_col), get_y=ColReader(label_col),
                         splitter=RandomSplitter(valid_pct, seed), item_tfms=Resize(size, resize),
                         batch_tfms=batch_tfms), "random"
    has_split = (data / "train").is_dir() and (data / "valid").is_dir()
    splitter = FolderSplitter() if has_split else RandomSplitter(valid_pct, seed)
    return DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                     splitter=splitter, item_tfms=Resize(size, resize), batch_tfms=batch_tfms), \
        ("train/valid folders" if has_split else "random")


def evaluate(learn):
    """Validation metrics with 95% intervals (Wilson for accuracy, bootstrap for F1) beside the majority-class
    baseline."""
    preds, targets = learn.get_preds()
    train_targets = torch.stack([learn.dls.y_block.encode(y) for y in learn.dls.train_ds.ys])
    top, base_acc = majority_baseline(train_targets, targets)
    report = {"n_valid": len(targets)}
    for m in (accuracy, f1_macro):
        low, high = confidence_interval(m, preds, targets)
        report[m.__name__] = {"value": round(m(preds, targets), 4), "ci95": [round(low, 4), round(high, 4)]}
    report["baseline"] = {"strategy": "majority class", "class": learn.dls.vocab[top], "accuracy": round(base_acc, 4)}
    return report


def print_report(report, out=None):
    out = out or sys.stdout  # looked up now, not at import: a notebook or test may swap sys.stdout
    a, f, b = report["accuracy"], report["f1_macro"], report["baseline"]
    print(f"\nvalidation ({report['n_valid']} images):", file=out)
    print(f"  accuracy  {a['value']:.3f}  (95% CI {a['ci95'][0]:.3f} to {a['ci95'][1]:.3f})", file=out)
    print(f"  F1 macro  {f['value']:.3f}  (95% CI {f['ci95'][0]:.3f} to {f['ci95'][1]:.3f})", file=out)
    print(f"  baseline  {b['accuracy']:.3f}  (always '{b['class']}', the most common training class)", file=out)


def _check_options(arch, pretrained, weights, epochs, freeze_epochs, lr, checkpoint, resume):
    """Refuse impossible options up front; returns the learning rate (a float, or 'auto')."""
    from ..models.backbones import PACKAGED, resolve_arch
    resolve_arch(arch)  # unknown names get "did you mean"
    if pretrained and weights is None and arch not in PACKAGED:
        raise CentaurError(f"no offline pretrained weights for {arch!r}; use arch 'lite0', train from scratch "
                           "(--scratch), or give a local .safetensors file (--weights).")
    if weights is not None and not Path(weights).is_file():
        raise CentaurError(f"weights file {str(weights)!r} does not exist; give a .safetensors file.")
    if weights is not None and Path(weights).suffix != ".safetensors":
        raise CentaurError(f"weights file {str(weights)!r} is not .safetensors; other formats can run code on "
                           "load, convert it first with safetensors.torch.save_file.")
    out = checkpoint.parent
    if out.exists() and not out.is_dir():
        raise CentaurError(f"the output {str(out)!r} is a file; give a folder for the model (--out).")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise CentaurError(f"cannot write the model to {str(out)!r}: {str(existing)!r} is not writable. "
                           "Choose another folder with --out.")
    for name, value, least in (("epochs", epochs, 1), ("freeze_epochs", freeze_epochs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CentaurError(f"{name} must be a whole number of at least {least}, got {value!r}.")
    check_resume(checkpoint, resume)
    if str(lr) == "auto":
        if resume:
            raise CentaurError("--lr auto cannot be combined with --resume; give the learning rate used before.")
        return "auto"
    try:
        base_lr = float(lr)
    except (TypeError, ValueError):
        raise CentaurError(f"--lr must be a number like 2e-3 or 'auto', got {lr!r}.") from None
    if not base_lr > 0 or base_lr == float("inf"):
        raise CentaurError(f"--lr must be a positive number like 2e-3, got {lr!r}.")
    return base_lr


def _check_loose(root):
    """Refuse images lying directly in the data folder (or in train/, valid/) beside class folders:
    each would be labeled with that folder's own name, a class nobody meant."""
    split = (root / "train").is_dir() and (root / "valid").is_dir()
    tops = [root / "train", root / "valid"] if split else [root]
    loose = [f for f in get_image_files(root) if f.parent in tops]
    if loose:
        names = ", ".join(f.name for f in loose[:3]) + (" ..." if len(loose) > 3 else "")
        where = f"{str(loose[0].parent)!r}"
        raise CentaurError(f"{len(loose)} image(s) lie directly in {where} ({names}), outside any class folder, so "
                           f"they would form a class named {loose[0].parent.name!r}. Put each in a folder named after "
                           f"its class, or move them out; to label images that have no class yet, use "
                           f"`centaur label {root}`.")


def _warn_nested(root, files):
    """Say so when images lie deeper than one class folder: each takes its label from the folder that
    holds it (fastai's parent_label), which surprises whoever meant the top-level folders as classes."""
    pairs = set()
    for f in files:
        parts = Path(f).relative_to(root).parts
        parts = parts[1:] if parts[0] in ("train", "valid") and len(parts) > 2 else parts
        if len(parts) > 2:
            pairs.add((parts[0], parts[-2]))
    if pairs and any(top != leaf for top, leaf in pairs):
        tops, leaves = sorted({t for t, _ in pairs}), sorted({leaf for _, leaf in pairs})
        warn(f"images lie more than one folder deep in {str(root)!r}: each is labeled by the folder that holds it "
             f"({', '.join(leaves[:4])}{' ...' if len(leaves) > 4 else ''}), not by the top-level folder "
             f"({', '.join(tops[:4])}{' ...' if len(tops) > 4 else ''}). If the top-level folders are the classes, "
             "list the files in a CSV with file,label columns and train on that.")


# Training memory per input float (activations kept for the backward pass, gradients): EfficientNet-
# Lite0 measured 143-146x the batch's float32 input at 256 and 512 px; other CNNs are of that order.
ACTIVATION_FACTOR = 150
MAX_SIZE = 4096


def _available_memory():
    """Bytes of memory free for this process (MemAvailable), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_memory(size, bs, available=None):
    """Refuse a --size and --bs whose training would not fit in memory, before anything is loaded: a
    typo such as --size 100000 otherwise grows until the system kills the process (and others)."""
    if size > MAX_SIZE:
        raise CentaurError(f"--size {size} is larger than the {MAX_SIZE} pixels centaur trains at; images are resized "
                           "to size x size, and 128 to 512 suits most tasks.")
    need = bs * 3 * size * size * 4 * ACTIVATION_FACTOR
    available = _available_memory() if available is None else available
    if available is not None and need > 0.8 * available:
        fits = max(1, int(0.8 * available // (3 * size * size * 4 * ACTIVATION_FACTOR)))
        raise CentaurError(f"training at --size {size} with --bs {bs} needs about {need / 2**30:.1f} GB of memory and "
                           f"{available / 2**30:.1f} GB is free; use --bs {fits} or less, or a smaller --size.")


@quiet_unless_main()  # under torchrun every process reads the folder; the first alone lists what it skipped
def train_image_classifier(data, out, arch="lite0", pretrained=True, weights=None, epochs=3, freeze_epochs=1,
                           lr="2e-3", bs=32, size=128, resize="squish", valid_pct=0.2, seed=42, augment=True,
                           file_col="file", label_col="label", threads=None, resume=False, progress=True, cbs=(),
                           device=None):
    """Fine-tune (or train from scratch) and write the model directory `out`; returns the report.

    cbs: extra callbacks for fine_tune, such as train.accelerate's MixedPrecision or CompileModel.
    device: None or "auto" (a CUDA GPU where there is one), "cpu" or "cuda" (see core/device.py).

    Started by torchrun (`centaur train --nproc N`), every process trains its share of each
    batch (train/distributed.py) and only the first writes the model directory; the others
    return None.

    >>> train_image_classifier("data/emoji", "models/emoji")  # doctest: +SKIP
    """
    torch.set_num_threads(threads or cpu_threads())
    main = is_main_process()
    set_seed(seed)
    out = Path(out)
    checkpoint = out / "checkpoint.safetensors"
    # Options are checked before any image is read, so a typo fails in a second, not after loading.
    base_lr = _check_options(arch, pretrained, weights, epochs, freeze_epochs, lr, checkpoint, resume)
    _check_memory(size, bs)
    device = resolve_device(device)
    dblock, split = image_datablock(data, size, resize, valid_pct, seed, augment, file_col, label_col)
    if Path(data).is_dir():
        _check_loose(Path(data))
    dls = dblock.dataloaders(data, bs=bs, seed=seed)
    if main and Path(data).is_dir():
        _warn_nested(Path(data), list(dls.train_ds.xs) + list(dls.valid_ds.xs))
    if main:
        print(f"data: {len(dls.train_ds)} training and {len(dls.valid_ds)} validation images, "
              f"{len(dls.vocab)} classes ({', '.join(dls.vocab)}), {split} split", file=sys.stderr)
    learn = vision_learner(dls, arch, pretrained=pretrained, weights=weights, path=out, progress=progress,
                           device=device)
    if not pretrained and weights is None:
        learn.unfreeze()
    if base_lr == "auto":
        base_lr, _, _ = learn.lr_find(plot=out.mkdir(parents=True, exist_ok=True) or out / "lr_find.png")
    from_scratch = not pretrained and weights is None
    if resume and main:
        print(f"resuming from {checkpoint}", file=sys.stderr)
    with distributed(learn):  # several processes under torchrun; otherwise just fine_tune
        learn.fine_tune(epochs, base_lr=base_lr, freeze_epochs=0 if from_scratch else freeze_epochs,
                        lr_mult=1 if from_scratch else 100, checkpoint=checkpoint, resume=resume, cbs=cbs)
    if not main:
        return None
    report = evaluate(learn)
    print_report(report)
    provenance = {"split": split, "seed": seed, "valid_pct": valid_pct if split == "random" else None,
                  "augment": augment, "batch_size": bs}
    export(learn, out, metrics=report, provenance=provenance)
    learn.recorder.plot_loss(out / "loss.png")
    dls.show_batch(out / "batch.png")
    checkpoint.unlink(missing_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "split.json").write_text(json.dumps(split_record(dls, data)))
    print(f"model written to {out}/ (predict with: centaur predict {out} IMAGE...)")
    return report
