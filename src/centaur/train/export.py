"""Export a trained Learner to a model directory (model.safetensors + model.json)."""
import datetime
import platform

import torch

from ..core.errors import CentaurError
from ..models.model_dir import write_model_dir


def versions():
    import timm
    from .. import __version__
    return {"centaur": __version__, "torch": torch.__version__, "timm": timm.__version__,
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
                           "its predictions would be wrong. Call dls.set_normalization(prep['mean'], prep['std']) "
                           "before training (vision_learner does), then train and export again.")


def export(learn, path, metrics=None, provenance=None, preprocessing=None):
    """Write the model and what is needed to use it: architecture, classes, preprocessing,
    metrics and where it came from.

    preprocessing: extra entries for model.json's preprocessing (for a table: the fitted
    processors, the target column, date handling).

    >>> export(learn, "models/emoji")  # doctest: +SKIP
    """
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
        "metrics": metrics or {},
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
    return write_model_dir(path, learn.model, meta)
