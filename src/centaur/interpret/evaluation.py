"""Honest evaluation: every metric with a bootstrap interval beside its baseline; calibration.

AUC is reported as AUC, never as accuracy; a binary task also gets precision at the top k%.
"""
import numpy as np
import torch

from ..train.metrics import accuracy, confidence_interval, error_rate, f1_macro


def metric_with_ci(metric, probs, targets, n_boot=1000, seed=0):
    """{'value', 'ci95'} for metric(probs, targets) with its 95% interval (train.metrics.confidence_interval:
    Wilson's for accuracy and error rate, a percentile bootstrap for the rest)."""
    low, high = confidence_interval(metric, probs, targets, n_boot=n_boot, seed=seed)
    return {"value": metric(probs, targets), "ci95": [low, high]}


def calibration(probs, targets, n_bins=10):
    """Reliability of the top probability: per bin (mean confidence, accuracy, count) and the
    expected calibration error (Guo et al. 2017), the count-weighted mean |accuracy - confidence|.

    >>> calibration(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 0]))["ece"]  # doctest: +SKIP
    """
    conf, pred = probs.max(-1)
    correct = (pred == targets).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    bins = []
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        n = int(inside.sum())
        if n == 0:
            continue
        c, a = conf[inside].double().mean().item(), correct[inside].mean().item()
        bins.append({"low": lo.item(), "high": hi.item(), "confidence": c, "accuracy": a, "count": n})
        ece += n / len(targets) * abs(a - c)
    return {"ece": ece, "bins": bins}


def auc(probs, targets):
    """Area under the ROC curve of a binary task (class 1 positive), by the rank formula."""
    scores = probs[:, 1].double().numpy()
    y = targets.numpy() == 1
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = scores.argsort()
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # ties share their mean rank
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_top(probs, targets, fraction=0.1):
    """Of the `fraction` of items most confidently called positive (class 1), how many are."""
    k = max(1, int(round(len(targets) * fraction)))
    top = probs[:, 1].argsort(descending=True)[:k]
    return (targets[top] == 1).double().mean().item()


def evaluate_classification(probs, targets, classes, train_targets=None):
    """Accuracy, error rate and macro F1 with intervals, the majority baseline, calibration,
    and for two classes AUC and precision at the top 5/10/20%.

    train_targets: labels of the training items, for the majority class (else validation's).
    """
    base_from = train_targets if train_targets is not None and len(train_targets) else targets
    top = int(torch.bincount(base_from, minlength=len(classes)).argmax())
    out = {"n": len(targets),
           "accuracy": metric_with_ci(accuracy, probs, targets),
           "error_rate": metric_with_ci(error_rate, probs, targets),
           "f1_macro": metric_with_ci(f1_macro, probs, targets),
           "baseline": {"strategy": "majority class", "class": classes[top],
                        "accuracy": (targets == top).double().mean().item()},
           "calibration": calibration(probs, targets)}
    if len(classes) == 2 and len(torch.unique(targets)) == 2:  # with one class validating, AUC is undefined
        out["auc"] = metric_with_ci(auc, probs, targets)
        out["precision_at_top"] = {f"{int(f * 100)}%": precision_at_top(probs, targets, f) for f in (0.05, 0.1, 0.2)}
    return out
