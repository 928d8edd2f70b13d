"""A model's raw outputs as what a person reads: probabilities, the top classes, a value.

One place for it, so a Learner's predict and a saved model's Predictor answer alike.
"""
import numpy as np

from ..core.errors import CentaurError
from .model_dir import TASKS


def activate(out, task):
    """Raw outputs (B, K) -> probabilities (softmax, or sigmoid for several labels), or the values."""
    if task == "single_label":
        return out.softmax(-1)
    if task == "multi_label":
        return out.sigmoid()
    return out


def describe(probs, task, classes, top_k=3):
    """One row of activate's output as a dict: {'label', 'probability', 'top_k'} for one label per
    item, {'labels', 'probabilities'} for several, {'value'} for a regression.

    >>> import torch
    >>> describe(torch.tensor([0.7, 0.2, 0.1]), "single_label", ["cat", "dog", "eel"], top_k=2)["top_k"]
    [{'label': 'cat', 'probability': 0.7}, {'label': 'dog', 'probability': 0.2}]
    """
    check_top_k(top_k)
    if task == "regression":
        return {"value": probs.tolist() if probs.numel() > 1 else probs.item()}
    if task == "multi_label":
        labels = [c for c, p in zip(classes, probs) if p >= 0.5]
        return {"labels": labels, "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs)}}
    values, idx = probs.topk(min(top_k, len(classes)))
    top = [{"label": classes[i], "probability": round(float(v), 6)} for v, i in zip(values, idx)]
    return {"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top}


def check_top_k(top_k):
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k is how many of the likeliest classes to list: a whole number from 1, not {top_k!r}.")


def task_of(y_block):
    """The task name of a DataLoaders' target block, or a CentaurError for one that has none."""
    task = getattr(y_block, "kind", None)
    if task not in TASKS:
        raise CentaurError(f"cannot read outputs for a target of kind {task!r}; expected one of {', '.join(TASKS)}.")
    return task
