"""The `centaur` command: train, predict and inspect models from a terminal."""
import argparse
import json
import os
import re
import shlex
import sys
from pathlib import Path

from .core.errors import CentaurError, did_you_mean
from .core.words import plural


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake in one line (`error: ...`, exit status 2), not a usage block.

    The usage block buries the one line that matters; `--help` still shows everything.
    """

    def error(self, message):
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            message += "." + did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _unknown_options(parser, args, extra):
    """One line for arguments nobody asked for, suggesting the nearest option of that command."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[args.command]
    options = [o for a in command._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    first = next((e.split("=")[0] for e in extra if e.startswith("-")), None)
    hint = did_you_mean(first, options) if first else ""
    command.error(f"unrecognized arguments: {' '.join(extra)}.{hint}")


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}")
    return value


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
    parser = _Parser(prog="centaur", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model: an image classifier (a folder or CSV of images) or a table "
                                     "model (a CSV or Parquet table with --target)",
                       description="Images: fine-tune a pretrained network on DATA, a folder with one subfolder per "
                                   "class (optionally inside train/ and valid/ subfolders, which then set the split) "
                                   "or a CSV of file,label. Tables: give a CSV or Parquet table and the column to "
                                   "predict with --target (see the options for tables below). The model directory "
                                   "is written to --out.")
    t.add_argument("data", help="folder of class subfolders, or a CSV with file and label columns; for a table model, "
                                "a CSV or Parquet table")
    t.add_argument("--out", help="model directory to write (default: models/<name of DATA>)")
    t.add_argument("--arch", default="lite0", help="network to use: 'lite0' (EfficientNet-Lite0, pretrained, works offline) or the name of any "
                        "timm architecture (default: lite0)")
    t.add_argument("--scratch", action="store_true", help="start from random weights instead of pretrained ones "
                                                                "(needs far more images)")
    t.add_argument("--weights", help="a local .safetensors file with the network's starting weights")
    t.add_argument("--epochs", type=_positive_int, help="passes over the training data with the whole network "
                                                        "learning (default: images 3, tables 5)")
    t.add_argument("--freeze-epochs", type=_non_negative_int, default=1,
                   help="images: passes training only the new last layer first, the "
                        "pretrained rest kept as it is (default: 1; 0: none)")
    t.add_argument("--lr", help="learning rate: how large each training step is (default: images 2e-3, tables 1e-2; "
                                 "images also take 'auto', which tries rates first and picks one)")
    t.add_argument("--bs", type=_positive_int, help="batch size: images or rows per training step (default: images 32; "
                                                        "tables: chosen from the number of training rows, 64 to 1024)")
    t.add_argument("--size", type=_positive_int, default=128,
                   help="images are resized to this many pixels square (default: 128)")
    t.add_argument("--resize", default="squish", choices=["crop", "pad", "squish"],
                   help="how images become square: crop the middle, pad the edges, or squish (default: squish)")
    t.add_argument("--valid-pct", type=_fraction, default=0.2,
                   help="share of the data held back to check the model, chosen at random: images when there "
                        "are no train/ and valid/ folders, table rows when there is no --date or --valid-last; "
                        "0.2 or 20%% (default: 0.2)")
    t.add_argument("--seed", type=_seed, default=42, help="random seed: the same seed gives the same split, order and "
                                                        "augmentation (default: 42)")
    t.add_argument("--no-augment", action="store_true", help="images: turn augmentation off (random flips, turns, zooms "
                                                        "and lighting changes of the training images)")
    t.add_argument("--file-col", default="file",
                   help="with a CSV of images: the column with image paths (default: file)")
    t.add_argument("--label-col", default="label",
                   help="with a CSV of images: the column with labels (default: label)")
    t.add_argument("--threads", type=_positive_int, help="CPU threads (default: all cores)")
    t.add_argument("--resume", action="store_true", help="go on from the checkpoint after a crash or Ctrl-C")
    t.add_argument("--nproc", type=_positive_int,
                   help="train with N processes on this machine, started by torchrun (--bs is the total of a "
                        "step, split among them); for several machines, see the README")
    t.add_argument("--bf16", action="store_true", help="compute in bfloat16, a shorter number format: faster on "
                                                       "GPUs and on CPUs with AVX512-BF16 or AMX (off by default)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to train: 'auto' (default) takes a CUDA GPU where PyTorch sees one, else the CPU; "
                        "with --nproc, one GPU per process")
    t.add_argument("--compile", action="store_true", help="images: compile the model with torch.compile (pays on "
                                                          "long runs; off by default)")
    tab = t.add_argument_group("tables (a CSV or Parquet file with --target)")
    tab.add_argument("--target", help="the column to predict; makes DATA a table")
    tab.add_argument("--date", help="date column: split into parts (year, month, day of week, ...), and the "
                                   "latest rows are held back to check the model")
    tab.add_argument("--valid-last", type=_fraction, help="with --date: the share of latest rows held back to check the "
                                                          "model, like 0.2 or 20%% (default: --valid-pct)")
    tab.add_argument("--group", help="column whose groups (a customer, a store) are kept whole on one side of "
                                    "the split")
    tab.add_argument("--cat", nargs="+", help="columns to treat as categories (default: chosen by type)")
    tab.add_argument("--cont", nargs="+", help="columns to treat as numbers (default: chosen by type)")
    tab.add_argument("--task", choices=["regression", "classification", "multi_label"],
                     help="what to predict: a number (regression), one class (classification) or several labels per "
                          "row (multi_label) (default: chosen from the target; multi_label is never guessed)")
    tab.add_argument("--label-delim",
                     help="with --task multi_label: what separates the labels in a cell (default: a space)")
    tab.add_argument("--holidays", help="with --date: country code (PT, US, DE, ...) for holiday features")
    tab.add_argument("--log-target", action="store_true", help="learn the logarithm of the target: for targets such as "
                                                                "prices, where relative errors matter")
    tab.add_argument("--layers", type=_positive_int, nargs="+", default=[200, 100],
                     help="sizes of the network's hidden layers (default: 200 100)")

    p = sub.add_parser("predict", help="predict images (JSON lines) or a table (CSV) with a trained model",
                       description="Predict with MODEL. An image model takes image files and folders (searched "
                                   "with their subfolders) and prints one JSON line per image: its most likely "
                                   "classes with their probabilities, or an 'error' for a file it cannot read. A "
                                   "table model takes one CSV or Parquet table and prints CSV with one prediction per row. "
                                   "--out writes a CSV or Parquet file instead.")
    p.add_argument("model", help="model directory written by `centaur train`")
    p.add_argument("paths", nargs="+", help="image files or folders; or one CSV/Parquet table for a table model")
    p.add_argument("--out", help="write predictions to this .csv or .parquet file, chunk by chunk; running the same "
                                 "command again after an interruption goes on from the last whole chunk "
                                 "(default: JSON lines for images, CSV for a table, on standard output)")
    p.add_argument("--chunk-size", type=_positive_int, help="with --out: images (default 512) or rows (100,000) "
                                                            "per chunk")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="with --out: processes predicting images at once, each with a share of the threads "
                        "(default: 1)")
    p.add_argument("--top-k", type=_positive_int, default=3,
                   help="images: how many of the most likely classes to list for each (default: 3)")
    p.add_argument("--bs", type=_positive_int, default=32,
                   help="images: how many go through the model together; larger is often faster but takes more "
                        "memory (default: 32)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads (default: all cores)")

    i = sub.add_parser("info", help="show what a model directory holds",
                       description="Print, as JSON, what MODEL's model.json records: the architecture, the classes "
                                   "or the target and columns, the preprocessing, the validation metrics and where "
                                   "it came from (data, split, seed, software versions).")
    i.add_argument("model", help="model directory written by `centaur train`")

    s = sub.add_parser("serve", help="serve a model: a web page and an HTTP API (127.0.0.1 by default)",
                       description="Serve MODEL (a model directory) over HTTP: a web page at /, POST /predict, "
                                   "/predict/batch and /feedback, GET /health, /ready, /metrics and /model. "
                                   "Every option can also come from CENTAUR_SERVE_<OPTION> environment variables "
                                   "or a --config file of such lines.")
    s.add_argument("model", help="model directory written by `centaur train`")
    s.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=_non_negative_int, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--runtime", choices=["torch", "onnx"], help="run the model with PyTorch (default) or "
                                                                 "onnxruntime (needs `centaur export MODEL --onnx`)")
    s.add_argument("--threads", type=_positive_int, help="CPU threads for the model (default: all cores)")
    s.add_argument("--lone-threads", type=_non_negative_int, help="CPU threads when one image is predicted alone (default "
                                                                   "1; 0: as many as --threads)")
    s.add_argument("--max-batch-size", type=_positive_int, help="most requests the model runs together as one "
                                                                     "batch (default 16)")
    s.add_argument("--max-wait-ms", type=float, help="how long a request waits for others to batch with (default 0: those "
                                                                 "that arrive while the model runs are batched)")
    s.add_argument("--max-body-bytes", type=_positive_int, help="largest request body (default 10,000,000)")
    s.add_argument("--max-pixels", type=_positive_int, help="largest image in pixels (default 20,000,000)")
    s.add_argument("--max-in-flight", type=_positive_int, help="most requests at once before 503 (default 64)")
    s.add_argument("--timeout-s", type=float, help="seconds before a prediction gives up and answers "
                                                           "504 (default 30)")
    s.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on POST requests (or set "
                                   "CENTAUR_SERVE_TOKEN, which keeps it out of the process list)")
    s.add_argument("--feedback-db", help="SQLite file for contested predictions (default MODEL/feedback.sqlite)")
    s.add_argument("--config", help="a file of CENTAUR_SERVE_<OPTION>=value lines")

    lb = sub.add_parser("label", help="the labeling workbench: label a folder of images in the browser",
                        description="Start the workbench for FOLDER on 127.0.0.1 and open it in a browser: images laid "
                                    "out by a pretrained network, lasso and name clusters, find similar images, train "
                                    "in seconds, export. Labels are saved in FOLDER/.centaur as you go.")
    lb.add_argument("folder", help="the folder of images to label (subfolders included)")
    lb.add_argument("--port", type=_non_negative_int, default=0, help="port (default: a free one, printed)")
    lb.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                                                        "any other needs a token, made up and printed if not given)")
    lb.add_argument("--token", help="token every request must carry (default: none on 127.0.0.1)")
    lb.add_argument("--store", help="label store: an SQLite file or a postgresql:// URL (default "
                                     "FOLDER/.centaur/labels.sqlite)")
    lb.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    lb.add_argument("--size", type=_positive_int, default=160, help="image size in pixels for the network that lays "
                                                                              "the images out (default 160)")
    lb.add_argument("--export", metavar="OUT", help="write labels, predictions, a folder per class and the model "
                                                    "to OUT, then exit, without serving")
    lb.add_argument("--train", action="store_true", help="with --export: run the images through the "
                                                                "network and train on the labels first")
    lb.add_argument("--copy", action="store_true", help="with --export: copy images into the class folders "
                                                        "instead of linking them")

    r = sub.add_parser("report", help="one HTML report: evaluation, confusion, heatmaps, subgroups, data checks, "
                                      "model card",
                       description="Evaluate MODEL on the validation files it recorded, audit subgroups, check the "
                                   "data for duplicates and label errors, and write one self-contained HTML file.")
    r.add_argument("model", help="model directory written by `centaur train`")
    r.add_argument("data", nargs="?", help="the data folder (or, for a table model, the table) it was trained on "
                                           "(default: where it was then)")
    r.add_argument("--groups", help="CSV with a file column and one column per grouping, for the subgroup audit; for "
                                    "a table model, a column of the table or a CSV with a 'row' column")
    r.add_argument("--out", help="HTML file to write (default: MODEL/report.html)")
    r.add_argument("--no-checks", action="store_true", help="skip the duplicate and label-error checks")
    r.add_argument("--top-k", type=_positive_int, default=9,
                   help="how many of the validation items the model got most wrong to show (default: 9)")

    e = sub.add_parser("export", help="export an image model directory to another format (ONNX)",
                       description="Write MODEL in another format beside its own files. --onnx writes "
                                   "MODEL/model.onnx, which `centaur serve MODEL --runtime onnx` serves with "
                                   "onnxruntime. Image models only: a table model predicts fast enough as it is.")
    e.add_argument("model", help="model directory written by `centaur train`")
    e.add_argument("--onnx", action="store_true", help="write MODEL/model.onnx for onnxruntime (image models)")

    f = sub.add_parser("feedback", help="work with the predictions people contested",
                       description="Work with the predictions people marked \"this is wrong\" on the page or "
                                   "API of `centaur serve`, kept with their answers in MODEL/feedback.sqlite.")
    f_sub = f.add_subparsers(dest="feedback_command", required=True)
    fe = f_sub.add_parser("export", help="write the contested cases as a dataset to retrain on",
                          description="Write the contested cases to --out: images in one folder per corrected "
                                      "class (image models) and feedback.csv listing every case; a case people "
                                      "answered differently goes to conflicts.csv for someone to decide.")
    fe.add_argument("model", help="the served model directory (its feedback.sqlite), or the SQLite file")
    fe.add_argument("--out", required=True, help="folder to write: images in one folder per class, and "
                                                 "feedback.csv (a new or empty folder, or an earlier export)")
    fe.add_argument("--target", help="for a table model: the name of the corrected column (default: the model's "
                                     "target when MODEL is its directory, else 'label')")

    dl = sub.add_parser("download", help="download images from a list of URLs into a folder (--out)",
                        description="Download the images in URLS (a text file, one URL per line; blank lines and "
                                    "# comments skipped) into the folder --out FOLDER, in parallel, with timeouts, retries and size "
                                    "and type checks. Files are named by a hash of their URL and never overwritten, "
                                    "so running it again only fetches what is missing. Every failure is listed in "
                                    "FOLDER/download_failures.csv. Exit status: 0 if any image was saved or already "
                                    "there, 1 if none, 2 for a mistake in the command.")
    dl.add_argument("urls", help="text file with one URL per line")
    dl.add_argument("--out", required=True, metavar="FOLDER", help="folder to save the images in (created if missing)")
    dl.add_argument("--workers", type=_positive_int, default=8, help="downloads at once (default 8)")
    dl.add_argument("--timeout", type=_positive_float, default=10.0,
                    help="seconds to wait for a connection and between reads (default 10)")
    dl.add_argument("--max-bytes", type=_positive_int, default=20_000_000, help="largest file (default 20,000,000)")
    dl.add_argument("--retries", type=_non_negative_int, default=3,
                    help="extra tries after a timeout, a dropped connection, 429 or 5xx (default 3)")

    v = sub.add_parser("verify", help="list the images in a folder that cannot be used",
                       description="Open every image under FOLDER fully (hidden folders such as .centaur-trash "
                                   "are skipped) and list those that are empty, truncated, not images or too "
                                   "large. Exit status 1 if any is unusable.")
    v.add_argument("folder", help="folder of images to check (subfolders included)")
    v.add_argument("--decisions", help="also write a decisions CSV that deletes them (apply it with "
                                       "`centaur clean CSV --root FOLDER`)")

    c = sub.add_parser("clean", help="move or relabel images from a CSV of decisions (undoable, never deletes)",
                       description="Apply DECISIONS.csv (columns file, action, new_label; action keep, delete or "
                                   "relabel) to the images under --root. delete moves the file to "
                                   "ROOT/.centaur-trash/<time>/, relabel moves it into the folder new_label beside "
                                   "its class folder; nothing is overwritten or deleted. The whole CSV is checked "
                                   "first and nothing moves if any line is wrong. A journal of the moves is written; "
                                   "--undo JOURNAL puts the files back.")
    c.add_argument("decisions", nargs="?", help="CSV with columns file, action and new_label")
    c.add_argument("--root", help="folder the CSV's file paths are relative to")
    c.add_argument("--trash", help="trash folder (default ROOT/.centaur-trash)")
    c.add_argument("--dry-run", action="store_true", help="list what would move, move nothing")
    c.add_argument("--undo", metavar="JOURNAL", help="move the files of an earlier run back (its journal.csv)")
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 2 a user mistake, 130 Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            _unknown_options(parser, args, extra)
    except SystemExit as e:  # argparse exits for --help and for mistakes; from Python, return the status
        return e.code
    args.argv = argv  # `train --nproc` starts the same command again on every process
    try:
        commands = {"train": cmd_train, "predict": cmd_predict, "info": cmd_info, "serve": cmd_serve, "label": cmd_label,
                    "report": cmd_report, "export": cmd_export, "feedback": cmd_feedback, "download": cmd_download,
                    "verify": cmd_verify, "clean": cmd_clean}
        return commands[args.command](args) or 0
    except CentaurError as e:
        # only training raises TrainingInterrupted, so its module is loaded by then; not importing it
        # here keeps a plain mistake (a wrong path) from paying a second to import torch
        learner = sys.modules.get("centaur.train.learner")
        if learner is not None and isinstance(e, learner.TrainingInterrupted):
            if os.environ.get("RANK", "0") == "0":  # of the processes `train --nproc` started, the first speaks
                print(e, file=sys.stderr)
                _resume_hint(args, argv)
            return 130
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped by Ctrl-C.", file=sys.stderr)
        _resume_hint(args, argv)
        return 130
    except BrokenPipeError:
        # The reader went away (`centaur predict ... | head`): stop quietly, as cat and grep do.
        # stdout is pointed at devnull so the interpreter's final flush does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # no real file descriptor (stdout replaced in-process)
            pass
        return 0
    except OSError as e:
        # The disk, not the user's input: a full disk or a folder that cannot be written. The message
        # names the file; a traceback would add nothing for the user. Status 1, as for other failures.
        print(f"error: {e}", file=sys.stderr)
        return 1


def _resume_hint(args, argv):
    """After Ctrl-C, say that the checkpoint is kept and give the exact command that goes on."""
    if args.command != "train":
        return
    checkpoint = _train_out(args) / "checkpoint.safetensors"
    if checkpoint.is_file():
        again = argv if "--resume" in argv else [*argv, "--resume"]
        if str(args.lr) == "auto":  # resume with the rate lr_find chose, to the last digit the plan compares
            again = _with_lr(again, _checkpoint_plan(checkpoint).get("base_lr"))
        print(f"checkpoint kept in {checkpoint}; go on with: centaur {shlex.join(again)}", file=sys.stderr)


def _checkpoint_plan(path):
    import json

    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})["centaur"]).get("plan") or {}
    except Exception:  # the hint is a courtesy: a checkpoint it cannot read is judged by --resume itself
        return {}


def _with_lr(argv, lr):
    """argv with --lr auto replaced by --lr <the exact rate>; unchanged when the rate is unknown."""
    if not isinstance(lr, (int, float)):
        return argv
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--lr" and i + 1 < len(argv):
            out += ["--lr", repr(float(lr))]
            skip = True
        elif arg.startswith("--lr="):
            out.append(f"--lr={float(lr)!r}")
        else:
            out.append(arg)
    return out


def _train_out(args):
    data = Path(args.data)
    return Path(args.out) if args.out else Path("models") / (data.stem if data.is_file() else data.resolve().name)


def cmd_train(args):
    data = Path(args.data)
    if not data.exists():
        raise CentaurError(f"{str(data)!r} does not exist; give a folder of class subfolders or a CSV file.")
    out = _train_out(args)
    if args.nproc and os.environ.get("CENTAUR_NPROC") is None:
        return launch_train(args, data, out)
    if args.target or data.suffix.lower() in (".parquet", ".pq"):
        if args.compile:
            raise CentaurError("--compile is for image models; on a table model it saved nothing (measured).")
        return train_table(args, data, out)
    from .vision.recipes import train_image_classifier  # torch and timm: a second to import, so after the check
    from .train.accelerate import CompileModel, MixedPrecision
    cbs = ([MixedPrecision()] if args.bf16 else []) + ([CompileModel()] if args.compile else [])
    train_image_classifier(data, out, arch=args.arch, pretrained=not args.scratch, weights=args.weights,
                           epochs=args.epochs or 3, freeze_epochs=args.freeze_epochs, lr=args.lr or "2e-3",
                           bs=args.bs or 32,
                           size=args.size, resize=args.resize, valid_pct=args.valid_pct, seed=args.seed,
                           augment=not args.no_augment, file_col=args.file_col, label_col=args.label_col,
                           threads=args.threads, resume=args.resume, cbs=cbs, device=args.device)


def launch_train(args, data, out):
    """`train --nproc N`: check what every process would refuse once, here, then start them through torchrun."""
    if "WORLD_SIZE" in os.environ:
        raise CentaurError("--nproc starts torchrun itself; under torchrun, leave --nproc out (torchrun's "
                           "--nproc-per-node says how many processes).")
    table = bool(args.target) or data.suffix.lower() in (".parquet", ".pq")
    bs = args.bs or (None if table else 32)  # a table's is chosen from its rows, a multiple of --nproc
    if bs is not None and bs % args.nproc:
        raise CentaurError(f"--bs {bs} cannot be split evenly among {args.nproc} processes; give a multiple of "
                           f"{args.nproc} (--bs is the total batch of one step).")
    if str(args.lr) == "auto":
        raise CentaurError("--lr auto runs lr_find, which is not distributed; run it once without --nproc and "
                           "give the learning rate it suggests.")
    if out.exists() and not out.is_dir():
        raise CentaurError(f"the output {str(out)!r} is a file; give a folder for the model (--out).")
    existing = next(p for p in (out.resolve(), *out.resolve().parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise CentaurError(f"cannot write the model to {str(out)!r}: {str(existing)!r} is not writable. "
                           "Choose another folder with --out.")
    if args.resume:
        from .train.checkpoint import check_resume
        check_resume(out / "checkpoint.safetensors", resume=True)
    from .core.device import resolve_device
    resolve_device(args.device, local_rank=args.nproc - 1)  # the last process needs a GPU too
    if args.nproc == 1:
        return cmd_train(argparse.Namespace(**{**vars(args), "nproc": None}))
    from .train.distributed import launch
    os.environ["CENTAUR_NPROC"] = str(args.nproc)  # the processes started see it and train instead of launching
    try:
        return launch(args.argv, args.nproc)
    except KeyboardInterrupt:
        return 130  # Ctrl-C reached the processes too: the first has said where its checkpoint is
    finally:
        del os.environ["CENTAUR_NPROC"]


def train_table(args, data, out):
    if not args.target:
        raise CentaurError(f"{str(data)!r} is a table; say which column to predict with --target COLUMN.")
    if data.is_dir():
        raise CentaurError(f"--target is for a table, but {str(data)!r} is a folder; give a CSV or Parquet file.")
    if args.valid_last and not args.date:
        raise CentaurError("--valid-last needs --date COLUMN: the latest rows by that date validate.")
    if args.label_delim is not None and args.task != "multi_label":
        raise CentaurError(f"--label-delim {args.label_delim!r} is for --task multi_label (several labels in one "
                           "cell); add --task multi_label, or leave --label-delim out.")
    try:
        lr = float(args.lr) if args.lr else 1e-2
    except ValueError:
        raise CentaurError(f"--lr must be a number like 1e-2, got {args.lr!r}.") from None
    from .tabular.recipes import train_tabular
    train_tabular(data, args.target, out, cat=args.cat, cont=args.cont, date=args.date, holidays=args.holidays,
                  group=args.group, valid_pct=args.valid_last or args.valid_pct, task=args.task,
                  epochs=args.epochs or 5, lr=lr, bs=args.bs, layers=tuple(args.layers),
                  log_target=args.log_target, seed=args.seed, threads=args.threads,
                  label_delim=" " if args.label_delim is None else args.label_delim,
                  device=args.device, resume=args.resume, bf16=args.bf16)


def predict_table(args):
    from .batch import FLOAT_FORMAT
    from .inference import TabularPredictor
    if len(args.paths) != 1:
        raise CentaurError(f"a table model predicts one table at a time; got {len(args.paths)} paths.")
    from .data.table_files import blank_overflow, read_user_table
    predictor = TabularPredictor(args.model, threads=args.threads)
    result = predictor.predict_table(blank_overflow(read_user_table(args.paths[0])))
    for col, n in predictor.unseen_.items():
        print(f"note: {plural(n, 'row')} {'has' if n == 1 else 'have'} a {col!r} value not seen in "
              "training (treated as unknown).", file=sys.stderr)
    result.to_csv(args.out or sys.stdout, index_label="row", float_format=FLOAT_FORMAT)
    n_rows = int((predictor.unseen_rows_ > 0).sum())
    unseen = f"; {n_rows} with categories not seen in training (column n_unseen)" if n_rows else ""
    print(f"wrote {len(result)} predictions" + (f" to {args.out}" if args.out else "") + unseen, file=sys.stderr)
    return 0


def predict_to_file(args):
    """`predict ... --out FILE`: chunk by chunk into CSV or Parquet, resumable (see batch.py)."""
    from .batch import predict_to_file, print_progress
    summary = predict_to_file(args.model, args.paths, args.out, chunk_size=args.chunk_size, workers=args.workers,
                              top_k=args.top_k, batch_size=args.bs, threads=args.threads, on_chunk=print_progress)
    for col, n in summary.get("unseen", {}).items():
        if n:
            print(f"note: {plural(n, 'row')} {'has' if n == 1 else 'have'} a {col!r} value not seen in "
                  "training (treated as unknown).", file=sys.stderr)
    if summary.get("rows_unseen"):
        more = f"; {summary['rows_unseen']} with categories not seen in training (column n_unseen)"
    elif summary.get("failed"):
        more = f"; {summary['failed']} files could not be read (column error)"
    else:
        more = ""
    resumed = f", {summary['resumed_chunks']} of {summary['chunks']} chunks from before" if summary[
        "resumed_chunks"] else ""
    print(f"wrote {summary['rows']} predictions to {args.out}{resumed}{more}", file=sys.stderr)
    return 1 if summary.get("failed") and summary["failed"] == summary["rows"] else 0


def cmd_predict(args):
    from .models.model_dir import read_meta
    if args.out:
        return predict_to_file(args)
    if args.chunk_size or args.workers != 1:
        raise CentaurError("--chunk-size and --workers are for writing a file; add --out predictions.csv "
                           "(or .parquet).")
    if read_meta(args.model)[1].get("kind") == "tabular":
        return predict_table(args)
    tables = [p for p in args.paths if Path(p).suffix.lower() in (".csv", ".parquet", ".tsv", ".xlsx")]
    if tables:
        raise CentaurError(f"{args.model!r} is an image model; it predicts image files or folders, not the table "
                           f"{tables[0]!r}. Give a table model (trained with --target) to predict a table.")
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


def cmd_label(args):
    if args.export:
        from .label.server import export_project
        return export_project(args.folder, args.export, store=args.store, mode="copy" if args.copy else "link",
                              train=args.train, size=args.size)
    if args.train or args.copy:
        raise CentaurError("--train and --copy go with --export OUT.")
    from .label.server import run_workbench
    return run_workbench(args.folder, host=args.host, port=args.port, store=args.store, token=args.token,
                         open_browser=not args.no_browser, size=args.size)


def cmd_serve(args):
    from .models.model_dir import read_meta
    read_meta(args.model)  # a wrong path is one clear line before the server machinery starts
    if args.config and not Path(args.config).is_file():
        raise CentaurError(f"--config {args.config!r} does not exist; give a file of CENTAUR_SERVE_<OPTION>=value lines.")
    from .serve.server import serve
    flags = {k: getattr(args, k) for k in ("host", "port", "runtime", "threads", "lone_threads", "max_batch_size",
                                          "max_wait_ms",
                                          "max_body_bytes", "max_pixels", "max_in_flight", "timeout_s", "token",
                                          "feedback_db")}
    return serve(args.model, {k: v for k, v in flags.items() if v is not None}, config=args.config)


def cmd_report(args):
    from .models.model_dir import read_meta
    table = read_meta(args.model)[1].get("kind") == "tabular"
    if args.data is not None and not Path(args.data).exists():
        what = "table" if table else "data folder"
        raise CentaurError(f"{what} {args.data!r} does not exist; give the {what} the model was trained on.")
    from .interpret.report import build_report
    report = build_report(args.model, args.data, groups=args.groups, checks=not args.no_checks, top_k=args.top_k)
    path = report.save(args.out or Path(args.model) / "report.html")
    e = report.data["evaluation"]
    if "rmse" in e:
        print(f"RMSE {e['rmse']['value']:.4g} (95% CI {e['rmse']['ci95'][0]:.4g} to {e['rmse']['ci95'][1]:.4g}; "
              f"always the training mean: {e['baseline']['rmse']:.4g}) on {e['n_valid']} validation rows; report "
              f"written to {path}", file=sys.stderr)
        return
    print(f"accuracy {e['accuracy']['value']:.3f} (95% CI {e['accuracy']['ci95'][0]:.3f} to "
          f"{e['accuracy']['ci95'][1]:.3f}) on {plural(e['n'], 'validation row' if table else 'validation image')}; report written to "
          f"{path}", file=sys.stderr)


def cmd_export(args):
    if not args.onnx:
        raise CentaurError("say which format to export to: --onnx.")
    from .models.onnx import export_onnx
    path = export_onnx(args.model)
    print(f"wrote {path} (serve it with: centaur serve {args.model} --runtime onnx)", file=sys.stderr)


def cmd_feedback(args):
    from .serve.feedback import export_feedback
    source = Path(args.model)
    db = source / "feedback.sqlite" if source.is_dir() else source
    target, columns, table = args.target, None, False
    if source.is_dir() and (source / "model.json").is_file():
        from .models.model_dir import read_meta
        _, meta = read_meta(source)
        if meta.get("kind") == "tabular":  # the corrected column under the target's own name, columns in its order
            prep, table = meta["preprocessing"], True
            target = target or prep.get("target")
            columns = [c for c in [prep.get("date"), *prep.get("cat_names", []), *prep.get("cont_names", [])] if c]
    target = target or "label"
    n, csv_path = export_feedback(db, args.out, target=target, columns=columns)
    if table:
        hint = f"add its rows to your table and train again, with --target {target}"
    else:
        hint = f"centaur train {args.out}, or merge its class folders into your training data"
    print(f"wrote {plural(n, 'contested case')} to {args.out} ({csv_path.name} lists them; retrain: {hint})", file=sys.stderr)


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {2**32 - 1}, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {2**32 - 1}, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def cmd_download(args):
    from .data.gather import FAILURES_CSV, download_images
    report = download_images(args.urls, args.out, workers=args.workers, timeout=args.timeout,
                             max_bytes=args.max_bytes, retries=args.retries)
    if not report.results:
        raise CentaurError(f"{args.urls!r} holds no URLs (blank lines and # comments are skipped); "
                           "put one http:// or https:// URL per line.")
    print(report.summary(), file=sys.stderr)
    failures_csv = Path(args.out) / FAILURES_CSV
    if report.failures:
        for r in report.failures[:10]:
            print(f"  line {r.line}: {r.url}: {r.reason}", file=sys.stderr)
        more = f"; {len(report.failures) - 10} more" if len(report.failures) > 10 else ""
        print(f"every failure is listed in {report.to_csv(failures_csv)}{more}", file=sys.stderr)
    elif failures_csv.is_file():
        failures_csv.unlink()  # from an earlier run: nothing failed this time
        print(f"removed the old {failures_csv} (nothing failed this time)", file=sys.stderr)
    return 0 if report.paths else 1


def cmd_verify(args):
    from .core.images import verify_images
    from .data.getters import get_image_files
    files = get_image_files(args.folder)
    good, bad = verify_images(files)
    root = Path(args.folder)
    for path, reason in bad:
        print(f"{path}: {reason}")
    if args.decisions:
        import csv
        target = Path(args.decisions)
        if target.suffix.lower() != ".csv":
            raise CentaurError(f"--decisions {args.decisions!r}: give a file name ending in .csv (it is written).")
        if target.exists():
            raise CentaurError(f"--decisions {args.decisions!r} exists already; give a new file name, so nothing "
                               "of yours is overwritten.")
        with open(target, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "action", "new_label", "reason"])
            writer.writerows([path.relative_to(root).as_posix(), "delete", "", reason] for path, reason in bad)
    note = f"; delete them with: centaur clean {args.decisions} --root {args.folder}" if args.decisions and bad else ""
    print(f"{len(good)} usable, {len(bad)} unusable of {len(files)} images in {args.folder}{note}", file=sys.stderr)
    return 1 if bad else 0


def cmd_clean(args):
    from .data.gather import DecisionsError
    try:
        return _clean(args)
    except DecisionsError as e:
        for problem in e.problems:  # all of them, then the one error line
            print(f"  {problem}", file=sys.stderr)
        raise CentaurError(f"{len(e.problems)} problem(s) in {e.what} (listed above), so nothing was moved; "
                           "fix them and run again.") from None


def _clean(args):
    from .data.gather import apply_cleaning, undo_cleaning
    if args.undo:
        if args.decisions:
            raise CentaurError("give either DECISIONS.csv (to clean) or --undo JOURNAL (to put files back), not both.")
        result = undo_cleaning(args.undo, dry_run=args.dry_run)
        for move in result.moves:
            print(f"{'would move' if args.dry_run else 'moved'} {move.source} -> {move.destination}")
        print(f"{'would put' if args.dry_run else 'put'} {len(result.moves)} files back", file=sys.stderr)
        return 0
    if not args.decisions:
        raise CentaurError("give the decisions CSV to apply (centaur clean DECISIONS.csv --root FOLDER), "
                           "or --undo JOURNAL.")
    if not args.root:
        raise CentaurError("say which folder the CSV's file paths are relative to: --root FOLDER.")
    result = apply_cleaning(args.decisions, args.root, trash=args.trash, dry_run=args.dry_run)
    for move in result.moves:
        print(f"{'would ' if args.dry_run else ''}{move.action} {move.source} -> {move.destination}")
    print(result.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
