"""Predictions for a recorded split of a model directory: probabilities, once, for every tool."""
from pathlib import Path

import torch

from ..core.errors import CentaurError
from ..core.images import ImageError
from ..models.model_dir import read_split_record


def read_split(model_dir, root=None):
    """(root, {'train': [(file, label)], 'valid': [...]}) from the model directory's split.json.

    root: where the data lives now (default: where it was when the model trained).
    """
    path, split = read_split_record(model_dir, "`centaur train`, which records which files validated")
    try:
        root = Path(root) if root is not None else Path(split["root"])
        sides = {side: [(f, y) for f, y in split[side]] for side in ("train", "valid")}
    except (KeyError, TypeError, ValueError) as e:
        raise CentaurError(f"{str(path)!r} is damaged ({e}); retrain the model to write it again.") from None
    if not sides["valid"]:
        raise CentaurError(f"{str(path)!r} records no validation files; retrain with a validation split.")
    if root.is_file():
        root = root.parent
    missing = [f for f, _ in sides["valid"] if not (root / f).is_file()]
    if len(missing) == len(sides["valid"]):
        raise CentaurError(f"none of the {len(missing)} validation files is under {str(root)!r} (first: "
                           f"{missing[0]!r}); give the data folder the model was trained on.")
    return root, sides


def decoded_batches(predictor, files, errors, batch_size=32):
    """Yield (uint8 (B, 3, H, W), indices into files) for the readable files, prepared as the
    predictor prepares them; an unreadable file's message goes into errors[index]."""
    for start in range(0, len(files), batch_size):
        batch, idx = [], []
        for i in range(start, min(start + batch_size, len(files))):
            try:
                batch.append(predictor.preprocess(files[i]))
                idx.append(i)
            except ImageError as e:
                errors[i] = str(e)
        if batch:
            yield torch.stack(batch), idx


def predict_files(predictor, files, batch_size=32):
    """(probs (N, K) for the readable files, kept indices, {index: error}) for image files."""
    probs, kept, errors = [], [], {}
    for xb, idx in decoded_batches(predictor, files, errors, batch_size):
        probs.append(predictor.forward(xb))
        kept.extend(idx)
    k = len(predictor.classes or [0])
    return (torch.cat(probs) if probs else torch.zeros(0, k)), kept, errors
