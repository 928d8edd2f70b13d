"""Export a trained Learner to a model directory (model.safetensors + model.json)."""
import datetime
import json
import os
import platform
from pathlib import Path

import torch

from ..core.errors import CentaurError
from ..core.log import warn
from ..models.model_dir import write_model_dir


def versions():
    # timm's version from its metadata: importing it for a table model costs a second, and in a
    # notebook prints tqdm's IProgress warning
    from importlib.metadata import version
    from .. import __version__
    return {"centaur": __version__, "torch": torch.__version__, "timm": version("timm"),
            "python": platform.python_version()}


def _check_normalization(dls, prep):
    """The model directory says how to normalize inputs; the Learner must have trained that way,
    else every prediction sees differently scaled pixels than training did."""
    train = getattr(dls, "train", None)
    if prep.get("mean") is None or not hasattr(train, "mean"):
        return  # not an image model, or loaders of another kind
    trained = None if train.mean is None else (tuple(train.mean), tuple(train.std))
    if trained is None or not all(abs(a - b) < 1e-6 for a, b in zip(trained[0] + trained[1],
                                                                    tuple(prep["mean"]) + tuple(prep["std"]))):
        raise CentaurError(f"the model directory would normalize inputs with mean {list(prep['mean'])} and std "
                           f"{list(prep['std'])}, but the Learner trained on {'unnormalized pixels' if trained is None else f'mean {list(trained[0])}, std {list(trained[1])}'}; "
                           "its predictions would be wrong. Call learn.dls.set_normalization(learn.preprocessing['mean'], "
                           "learn.preprocessing['std']) before training (vision_learner does), then train and export "
                           "again.")


def export(learn, path, metrics=None, provenance=None, preprocessing=None):
    """Write the model and what is needed to use it: architecture, classes, preprocessing,
    metrics and where it came from.

    preprocessing: extra entries for model.json's preprocessing (for a table: the fitted
    processors, the target column, date handling).

    >>> export(learn, "models/emoji")  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export writes to a folder: give its path (str or Path), not a {type(path).__name__}.")
    if getattr(learn, "preprocessing", None) is None:
        raise CentaurError("this Learner has no preprocessing description (architecture, mean, std), so its "
                           "model directory could not be used; build it with vision_learner, or set "
                           "learn.preprocessing from create_classifier's second result.")
    dls, prep = learn.dls, {**learn.preprocessing, **(preprocessing or {})}
    _check_normalization(dls, prep)
    prep["item_tfms"] = [t.to_dict() for t in dls.item_tfms if hasattr(t, "to_dict")]
    if getattr(dls, "processor", None) is not None:
        prep["processor"] = dls.processor.to_dict()
    y_block = dls.y_block
    meta = {
        "kind": prep.get("kind", "image"),
        "task": y_block.kind,
        "arch": prep.get("arch", prep.get("kind")),
        "timm_arch": prep.get("timm_arch"),
        "num_outputs": y_block.num_outputs,
        "classes": list(y_block.vocab) if y_block.vocab is not None else None,
        "preprocessing": prep,
        # the last epoch's numbers when the caller gives none (a Learner exported from Python)
        "metrics": metrics or ({"last_epoch": {k: v for k, v in learn.epoch_log.items() if k not in ("time", "step")}}
                               if learn.epoch_log else {}),
        "provenance": {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "data": getattr(dls.train_ds, "source", None),
            "n_train": len(dls.train_ds), "n_valid": len(dls.valid_ds),
            "skipped_files": len(getattr(dls.train_ds, "skipped", []) or []),
            "training": learn.plan,
            "versions": versions(),
            **(provenance or {}),
        },
    }
    if learn.plan is None and not learn.epoch_log:
        warn("exporting a model that was never trained: its head is as it was made (random); train it first "
             "(fine_tune, fit_one_cycle) unless that is what you want.")
    written = write_model_dir(path, learn.model, meta)
    record = split_record(dls) if prep.get("kind", "image") == "image" else None
    if record is not None:  # so `centaur report` and ClassificationInterpretation.from_model_dir can use it
        (written / "split.json").write_text(json.dumps(record))
    return written


def split_record(dls, data=None):
    """Which files trained and which validated, with their labels, relative to the data's root
    (`data`, by default the folder all the files share); None when the items are not files.

    `centaur report` evaluates on exactly these validation files and checks the two sides for
    duplicates, so the model directory must say which they were.
    """
    xs = [x for ds in (dls.train_ds, dls.valid_ds) for x in getattr(ds, "xs", [])]
    if not xs or not all(isinstance(x, (str, os.PathLike)) for x in xs):
        return None
    if data is None:
        root = Path(os.path.commonpath([str(Path(x).resolve().parent) for x in xs]))
    else:
        data = Path(data).resolve()
        root = data if data.is_dir() else data.parent

    def rel(x):
        p = Path(x).resolve()
        return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)

    return {"root": str(root), **{side: [[rel(x), y] for x, y in zip(ds.xs, ds.ys)]
                                  for side, ds in (("train", dls.train_ds), ("valid", dls.valid_ds))}}
