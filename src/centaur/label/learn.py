"""Training from labels in seconds: a logistic-regression head on cached image features, its
cross-validated accuracy, and what the model is unsure of (active learning) or already knows (fade).

The body stays the frozen pretrained network whose pooled features the workbench has cached, so
training is a convex problem over (N, D) floats: LBFGS solves it for 1,000 labels x 1,280
features, five folds and the final fit, in well under a second on two cores.
"""
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.errors import CentaurError
from ..interpret.data_checks import fit_logistic, out_of_fold_probs
from ..interpret.evaluation import metric_with_ci
from ..train.metrics import accuracy

# The L2 penalty wd * |W|^2 on standardized features, added to the mean cross-entropy. Measured on
# data/emoji (6 classes, 373 images, lite0 features at 96 px), out-of-fold: accuracy is flat
# (0.79 to 0.81) from 1e-3 to 0.3, log loss is lowest at 0.03 (0.58, against 0.71 at 1e-3), and of
# the predictions made with probability >= 0.9, 96% are right. A penalty also keeps the weights
# finite when few labels separate the classes perfectly, and LBFGS converges in fewer steps.
WEIGHT_DECAY = 0.03
MAX_ITER = 200  # LBFGS iterations per fit; it usually stops earlier on its own tolerance
FADE_THRESHOLD = 0.9  # "fade" dims images predicted at least this surely (96% of them right, above)


@dataclass
class HeadResult:
    """A linear head trained on labeled features, and how well it does on images it did not see.

    weight (K, D) and bias (K,) act on raw features (the standardization is folded in):
    logits = features @ weight.T + bias.
    """
    classes: list
    weight: np.ndarray  # (K, D) float32
    bias: np.ndarray  # (K,) float32
    accuracy: float  # cross-validated: every labeled image predicted by a model that never saw it
    interval: tuple  # (low, high) 95% bootstrap interval of that accuracy
    num_labeled: int
    counts: dict  # labeled images per class
    folds: int  # the folds actually used (fewer than asked when a class is small)
    seconds: float  # time taken by train_head
    probs: np.ndarray = field(repr=False)  # (N, K): out-of-fold for labeled rows, the full model's for the rest

    def predict_proba(self, features):
        """(M, K) class probabilities for raw features (M, D) from the full model."""
        logits = np.asarray(features, dtype=np.float32) @ self.weight.T + self.bias  # (M, K)
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def predict(self, features):
        """Predicted class names for raw features (M, D)."""
        return [self.classes[i] for i in self.predict_proba(features).argmax(1)]


def _labeled_mask(labels):
    """True where a row has a label: None, NaN (a pandas gap) and '' mean unlabeled."""
    return np.array([not (y is None or y == "" or (isinstance(y, float) and y != y)) for y in labels], dtype=bool)


@contextmanager
def _one_thread():
    """Run the block with one torch thread, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def stratified_folds(targets, folds, seed=0):
    """(N,) fold number per row, each class spread evenly over the folds, shuffled by `seed`.

    >>> stratified_folds(np.array([0, 0, 1, 1, 1, 1]), 2).tolist()  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(targets == c)) for c in np.unique(targets)])
    fold = np.empty(len(targets), dtype=np.int64)
    fold[order] = np.arange(len(order)) % folds  # consecutive rows of one class go to different folds
    return fold


def train_head(features, labels, folds=5, seed=0, wd=WEIGHT_DECAY, max_iter=MAX_ITER):
    """Fit a logistic regression on the labeled rows of `features` and cross-validate it.

    features: (N, D) floats for every image; labels: N class names, None for unlabeled rows.
    Features are standardized (mean and spread over all N rows: no labels involved, so the
    cross-validation stays honest), then an L2-penalized multinomial logistic regression is
    fitted by LBFGS, once per stratified fold and once on all labels. Needs at least two
    classes and two labeled images per class; folds drop to the smallest class count.

    >>> result = train_head(features, ["cat", None, "dog", ...])  # doctest: +SKIP
    >>> f"{result.accuracy:.2f} ({result.interval[0]:.2f} to {result.interval[1]:.2f})"  # doctest: +SKIP
    """
    start = time.perf_counter()
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise CentaurError(f"features should be a table (N images, D features), got shape {features.shape}.")
    labels = list(labels)
    if len(labels) != len(features):
        raise CentaurError(f"got {len(features)} feature rows but {len(labels)} labels; give one label (or None) "
                           "per row.")
    if not np.isfinite(features).all():
        raise CentaurError("features contain NaN or infinite values; recompute the embeddings.")
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise CentaurError(f"folds should be an integer of at least 2, got {folds!r}.")
    mask = _labeled_mask(labels)
    names = [str(y) for y, m in zip(labels, mask) if m]
    classes = sorted(set(names))
    counts = {c: names.count(c) for c in classes}
    if len(classes) < 2:
        have = f"only {classes[0]!r}" if classes else "no labels"
        raise CentaurError(f"training needs at least 2 classes, got {have}; label some images of another class.")
    few = {c: n for c, n in counts.items() if n < 2}
    if few:
        listing = ", ".join(f"{c!r} has {n}" for c, n in few.items())
        raise CentaurError(f"each class needs at least 2 labeled images to train and cross-validate; {listing}. "
                           "Label more images of it, or remove its label.")
    folds = min(folds, min(counts.values()))
    index = {c: i for i, c in enumerate(classes)}
    targets = np.array([index[y] for y in names])  # (L,)

    # Standardize so one penalty suits every feature; zero-spread features (dead channels) stay 0.
    mean = features.mean(0)  # (D,)
    std = features.std(0)
    std[std < 1e-6] = 1.0
    # LBFGS needs autograd even when the caller is in inference mode. One thread: these products
    # are small (L x D times D x K), and on a busy 2-core machine two threads waiting on each other
    # made a 0.6 s fit take 2 to 7 s, while one thread took 0.6 to 0.8 s every time.
    with torch.inference_mode(False), _one_thread():
        x = torch.from_numpy((features - mean) / std)  # (N, D)
        y = torch.from_numpy(targets)
        xl = x[torch.from_numpy(mask)]  # (L, D)
        fold = torch.from_numpy(stratified_folds(targets, folds, seed))
        oof = out_of_fold_probs(xl, y, len(classes), folds, epochs=max_iter, wd=wd, fold=fold)  # (L, K)
        linear = fit_logistic(xl, y, len(classes), wd, max_iter)
        w_std, b_std = linear.weight.numpy().astype(np.float64), linear.bias.numpy().astype(np.float64)
    # Fold the standardization into the weights: ((x - mean) / std) @ W.T + b = x @ (W / std).T + b'
    weight = (w_std / std).astype(np.float32)  # (K, D)
    bias = (b_std - (mean / std) @ w_std.T).astype(np.float32)  # (K,)
    result = HeadResult(classes, weight, bias, 0.0, (0.0, 0.0), int(mask.sum()), counts, folds, 0.0,
                        np.zeros((len(features), len(classes)), dtype=np.float32))
    result.probs = result.predict_proba(features)
    result.probs[mask] = oof.numpy()
    scored = metric_with_ci(accuracy, oof, y, seed=seed)
    result.accuracy, result.interval = float(scored["value"]), tuple(float(v) for v in scored["ci95"])
    result.seconds = time.perf_counter() - start
    return result


def uncertainty(probs):
    """(N,) how unsure each prediction is: 1 - (top probability - second probability), 0 to 1.

    The margin (Scheffer et al. 2001) ranks an image torn between two classes above one spread
    thinly over many, which is the image a label helps most to separate.

    >>> uncertainty(np.array([[0.9, 0.1], [0.5, 0.5]])).tolist()
    [0.19999999999999996, 1.0]
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise CentaurError(f"probabilities should be (N images, K >= 2 classes), got shape {probs.shape}.")
    top2 = np.sort(probs, axis=1)[:, -2:]  # (N, 2): second, first
    return 1.0 - (top2[:, 1] - top2[:, 0])


def review_queue(probs, leave_out, limit=100):
    """Row numbers of the images to label next, least certain first, leaving out the rows of
    `leave_out` (a bool mask: labeled images, and those without a prediction).

    probs: (N, K), a HeadResult's or the project's (NaN where an image has no prediction). Ties
    keep row order, so the queue is the same every time for the same model.

    >>> rows = review_queue(result.probs, labels != None, limit=20)  # doctest: +SKIP
    """
    probs = np.asarray(probs)
    leave_out = np.asarray(leave_out, dtype=bool)
    if leave_out.shape != (len(probs),):
        raise CentaurError(f"the mask of images to leave out should have one entry per image ({len(probs)}), "
                           f"got shape {leave_out.shape}.")
    rows = np.flatnonzero(~leave_out)
    order = np.argsort(-uncertainty(probs[rows]), kind="stable")
    return rows[order[:limit]]


def confident(result, threshold=FADE_THRESHOLD):
    """(N,) True where the model's top probability is at least `threshold`: images to fade out.

    Labeled rows are judged by their out-of-fold probability, so fading also shows which labels
    the model could have guessed.
    """
    if not 0 < threshold <= 1:
        raise CentaurError(f"threshold should be a probability in (0, 1], got {threshold!r}.")
    return np.asarray(result.probs).max(1) >= threshold
