"""Metrics on whole-epoch predictions, their confidence intervals (Wilson, bootstrap) and baselines.

Every metric takes (preds, targets) tensors: preds are raw model outputs (logits or
numbers), so a metric decides itself how to read them.
"""
import math
from statistics import NormalDist

import numpy as np
import torch


def accuracy(preds, targets):
    """Fraction of items whose most likely class is the right one (single label)."""
    return (preds.argmax(-1) == targets).float().mean().item()


def error_rate(preds, targets):
    """1 - accuracy."""
    return 1.0 - accuracy(preds, targets)


def f1_macro(preds, targets):
    """F1 averaged over classes, each class counting the same however rare it is."""
    num_classes = preds.shape[-1]
    pred = preds.argmax(-1)
    scores = []
    for c in range(num_classes):
        tp = ((pred == c) & (targets == c)).sum().item()
        fp = ((pred == c) & (targets != c)).sum().item()
        fn = ((pred != c) & (targets == c)).sum().item()
        if tp + fp + fn == 0:
            continue  # class absent from both: it does not count
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def accuracy_multi(preds, targets, threshold=0.5):
    """Multi-label accuracy: each (item, label) decision counts once."""
    return ((preds.sigmoid() >= threshold).float() == targets).float().mean().item()


def rmse(preds, targets):
    """Root mean squared error."""
    return torch.sqrt(((preds.view_as(targets) - targets) ** 2).mean()).item()


def mae(preds, targets):
    """Mean absolute error."""
    return (preds.view_as(targets) - targets).abs().mean().item()


def r2(preds, targets):
    """Coefficient of determination: 1 - residual variance / target variance."""
    preds = preds.view_as(targets).double()
    total = ((targets - targets.mean()) ** 2).sum().item()
    residual = ((targets - preds) ** 2).sum().item()
    return 1.0 - residual / total if total > 0 else float("nan")


def rmspe(preds, targets):
    """Root mean squared percentage error over rows with a non-zero target (Rossmann's metric)."""
    preds, keep = preds.view_as(targets), targets != 0
    if not keep.any():
        return float("nan")
    return torch.sqrt((((targets[keep] - preds[keep]) / targets[keep]) ** 2).mean()).item()


def auc(preds, targets):
    """Area under the ROC curve for a binary task (never to be called accuracy).

    preds: (N, 2) logits or (N,) scores for the positive class; ties count half
    (the Mann-Whitney U statistic).
    """
    scores = preds[:, -1] if preds.ndim == 2 else preds
    targets = targets.view(-1).bool()
    n_pos, n_neg = int(targets.sum()), int((~targets).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = torch.from_numpy(_average_ranks(scores.double().numpy()))
    return float((ranks[targets].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(x):
    """Ranks 1..n of x, equal values sharing the mean of their ranks (vectorized)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the highest rank of each distinct value
    return (last - (counts - 1) / 2)[inverse]


METRICS = {"accuracy": accuracy, "error_rate": error_rate, "f1_macro": f1_macro,
           "accuracy_multi": accuracy_multi, "rmse": rmse, "mae": mae, "r2": r2, "rmspe": rmspe, "auc": auc}


def metric_name(metric):
    return getattr(metric, "__name__", type(metric).__name__)


def wilson_interval(successes, n, level=0.95):
    """(low, high) Wilson score interval of a proportion successes / n (Wilson 1927).

    Unlike a bootstrap, it stays honest at the edges: 24 right out of 24 is not "100% to 100%"
    but 86% to 100%, and it is accurate for small n (Brown, Cai and DasGupta 2001).

    >>> [round(v, 3) for v in wilson_interval(24, 24)]
    [0.862, 1.0]
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)


def confidence_interval(metric, preds, targets, n_boot=1000, level=0.95, seed=0):
    """(low, high) interval of metric(preds, targets): Wilson's for accuracy and error rate (a
    proportion of items), a percentile bootstrap over items for every other metric."""
    if metric in (accuracy, error_rate):
        n = len(targets)
        right = round(accuracy(preds, targets) * n)
        low, high = wilson_interval(right, n, level)
        return (low, high) if metric is accuracy else (1 - high, 1 - low)
    return bootstrap_ci(metric, preds, targets, n_boot=n_boot, level=level, seed=seed)


def bootstrap_ci(metric, preds, targets, n_boot=1000, level=0.95, seed=0):
    """(low, high) percentile bootstrap interval of metric over resampled validation items.

    accuracy, error_rate, f1_macro and the regression metrics are computed for many resamples
    at once from how often each item is drawn (a matrix product, not n_boot metric calls: 62,000
    rows took 45 s the slow way); any other metric is called once per resample. Both use the
    same resamples, drawn a chunk at a time so memory stays at 64 x N counts.

    >>> bootstrap_ci(accuracy, torch.eye(3)[[0, 1, 2, 0]], torch.tensor([0, 1, 2, 1]))  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    n = len(targets)
    fast = _BATCHED.get(metric)
    values = []
    for start in range(0, n_boot, RESAMPLE_CHUNK):
        idx = rng.integers(0, n, (min(RESAMPLE_CHUNK, n_boot - start), n))  # (b, n): the items of each resample
        if fast is not None:
            b = len(idx)
            # counts[j, i]: how many times item i is in resample j
            counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n)
            values.extend(fast(counts.reshape(b, n).astype(np.float64), preds, targets))
        else:
            values.extend(metric(preds[torch.from_numpy(row)], targets[torch.from_numpy(row)]) for row in idx)
    alpha = (1 - level) / 2
    if np.isnan(values).all():  # e.g. AUC of items of one class: no interval, and no numpy 'All-NaN slice' warning
        return float("nan"), float("nan")
    return float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))


RESAMPLE_CHUNK = 64


def _batched_accuracy(counts, preds, targets):  # counts (n_boot, n) -> (n_boot,)
    correct = (preds.argmax(-1) == targets).double().numpy()  # (n,)
    return counts @ correct / counts.shape[1]


def _batched_f1_macro(counts, preds, targets):  # counts (n_boot, n) -> (n_boot,)
    num_classes = preds.shape[-1]
    pred, tgt = preds.argmax(-1).numpy(), targets.numpy()
    classes = np.arange(num_classes)
    is_pred, is_tgt = pred[:, None] == classes, tgt[:, None] == classes  # (n, C)
    tp = counts @ (is_pred & is_tgt)           # (n_boot, C)
    fp = counts @ (is_pred & ~is_tgt)
    fn = counts @ (~is_pred & is_tgt)
    denom = 2 * tp + fp + fn
    present = denom > 0  # a class absent from both targets and predictions does not count
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=present)
    n_present = present.sum(1)
    return np.where(n_present > 0, f1.sum(1) / np.maximum(n_present, 1), 0.0)


def _per_item(preds, targets):
    """(prediction, target) as float64 NumPy arrays (n, k): k values per item (1 for one target)."""
    t = targets.double().numpy().reshape(len(targets), -1)
    return preds.reshape(targets.shape).double().numpy().reshape(t.shape), t


def _batched_rmse(counts, preds, targets):  # counts (n_boot, n) -> (n_boot,)
    p, t = _per_item(preds, targets)
    return np.sqrt(counts @ ((p - t) ** 2).sum(1) / t.size)


def _batched_mae(counts, preds, targets):
    p, t = _per_item(preds, targets)
    return counts @ np.abs(p - t).sum(1) / t.size


def _batched_r2(counts, preds, targets):
    p, t = _per_item(preds, targets)
    residual = counts @ ((p - t) ** 2).sum(1)
    size = t.size  # each resample holds as many values as the set
    total = counts @ (t ** 2).sum(1) - (counts @ t.sum(1)) ** 2 / size  # sum of squares about the resample's mean
    return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.nan)


def _batched_rmspe(counts, preds, targets):
    p, t = _per_item(preds, targets)
    keep = t != 0
    ratio = np.divide(t - p, t, out=np.zeros_like(t), where=keep)
    kept = counts @ keep.sum(1)
    return np.where(kept > 0, np.sqrt(counts @ (ratio ** 2).sum(1) / np.maximum(kept, 1)), np.nan)


_BATCHED = {accuracy: _batched_accuracy, error_rate: lambda c, p, t: 1.0 - _batched_accuracy(c, p, t),
            f1_macro: _batched_f1_macro, rmse: _batched_rmse, mae: _batched_mae, r2: _batched_r2,
            rmspe: _batched_rmspe}


def majority_baseline(train_targets, valid_targets):
    """(class, accuracy) of always predicting the most common training class."""
    counts = torch.bincount(train_targets)
    top = int(counts.argmax())
    return top, (valid_targets == top).float().mean().item()
