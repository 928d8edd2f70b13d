"""The `centaur` command: train, predict and inspect models from a terminal."""
import argparse
import json
import os
import sys
from pathlib import Path

from .core.errors import CentaurError


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.2 or 20%, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (like 0.2 or 20%), got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="centaur", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fine-tune a pretrained image classifier on a folder or CSV",
                       description="Fine-tune a pretrained network on FOLDER (one subfolder per class, "
                                   "optionally inside train/ and valid/) or on a CSV of file,label.")
    t.add_argument("data", help="folder of class subfolders, or a CSV with file and label columns")
    t.add_argument("--out", help="model directory to write (default: models/<data name>)")
    t.add_argument("--arch", default="lite0", help="'lite0' (pretrained, offline) or any timm name")
    t.add_argument("--scratch", action="store_true", help="train from random weights (no pretraining)")
    t.add_argument("--weights", help="a local .safetensors file with the body's starting weights")
    t.add_argument("--epochs", type=_positive_int, default=3, help="epochs with the whole network training")
    t.add_argument("--freeze-epochs", type=int, default=1, help="epochs training only the new head first")
    t.add_argument("--lr", default="2e-3", help="base learning rate, or 'auto' to run lr_find first")
    t.add_argument("--bs", type=_positive_int, default=32, help="batch size")
    t.add_argument("--size", type=_positive_int, default=128, help="image size in pixels")
    t.add_argument("--resize", default="squish", choices=["crop", "pad", "squish"], help="how images become square")
    t.add_argument("--valid-pct", type=_fraction, default=0.2, help="validation fraction for a random split")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--no-augment", action="store_true", help="turn batch augmentation off")
    t.add_argument("--file-col", default="file", help="CSV column with image paths")
    t.add_argument("--label-col", default="label", help="CSV column with labels")
    t.add_argument("--threads", type=_positive_int, help="CPU threads (default: all cores)")
    t.add_argument("--resume", action="store_true", help="go on from the checkpoint after a crash or Ctrl-C")

    p = sub.add_parser("predict", help="predict images with a trained model (JSON lines)")
    p.add_argument("model", help="model directory written by `centaur train`")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--top-k", type=_positive_int, default=3)
    p.add_argument("--bs", type=_positive_int, default=32)
    p.add_argument("--threads", type=_positive_int)

    i = sub.add_parser("info", help="show what a model directory holds")
    i.add_argument("model")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "predict": cmd_predict, "info": cmd_info}[args.command](args) or 0
    except CentaurError as e:
        from .train.learner import TrainingInterrupted
        print(f"error: {e}", file=sys.stderr)
        return 130 if isinstance(e, TrainingInterrupted) else 2
    except KeyboardInterrupt:
        print("stopped by Ctrl-C.", file=sys.stderr)
        return 130


def cmd_train(args):
    from .vision.recipes import train_image_classifier
    data = Path(args.data)
    if not data.exists():
        raise CentaurError(f"{str(data)!r} does not exist; give a folder of class subfolders or a CSV file.")
    out = Path(args.out) if args.out else Path("models") / (data.stem if data.is_file() else data.resolve().name)
    train_image_classifier(data, out, arch=args.arch, pretrained=not args.scratch, weights=args.weights,
                           epochs=args.epochs, freeze_epochs=args.freeze_epochs, lr=args.lr, bs=args.bs,
                           size=args.size, resize=args.resize, valid_pct=args.valid_pct, seed=args.seed,
                           augment=not args.no_augment, file_col=args.file_col, label_col=args.label_col,
                           threads=args.threads, resume=args.resume)


def cmd_predict(args):
    from .inference import Predictor
    predictor = Predictor(args.model, threads=args.threads, batch_size=args.bs)
    failed = total = 0
    for row in predictor.predict_paths(args.paths, top_k=args.top_k):
        total += 1
        failed += "error" in row
        print(json.dumps(row), flush=True)
    if failed:
        print(f"{failed} of {total} files could not be read (see their 'error' lines).", file=sys.stderr)
    return 1 if failed and failed == total else 0


def cmd_info(args):
    from .models.model_dir import read_meta
    _, meta = read_meta(args.model)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    sys.exit(main())
