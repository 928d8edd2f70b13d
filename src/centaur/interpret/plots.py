"""Plots for the interpretation tools, as PNG bytes that a notebook shows (no display needed)."""
import numpy as np

from ..core.figures import new_figure, save_png


def _figure(width=5, height=4):
    fig, axes = new_figure(width, height)
    return fig, axes[0, 0]


def confusion_png(cm, classes, path=None):
    """Counts with actual classes as rows and predictions as columns."""
    n = len(classes)
    fig, ax = _figure(1.2 + 0.55 * n, 1.0 + 0.5 * n)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    top = cm.max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > top / 2 else "black")
    return save_png(fig, path)


def reliability_png(calibration, path=None):
    """Accuracy against confidence per bin; the diagonal is perfect calibration."""
    fig, ax = _figure(4, 4)
    bins = calibration["bins"]
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    if bins:
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"expected calibration error {calibration['ece']:.3f}")
    ax.legend(loc="upper left")
    return save_png(fig, path)


def image_grid_png(images, titles, cols=3, path=None):
    """(H, W, 3) uint8 images in a grid with a title each."""
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = new_figure(3 * cols, 3.2 * rows, rows, cols)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=8)
    return save_png(fig, path)


def residual_png(preds, targets, target_name="target", path=None):
    """Residual (actual - predicted) against the prediction; a good model's points hug zero evenly."""
    preds, targets = np.asarray(preds, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    fig, ax = _figure(5.5, 4)
    ax.scatter(preds, targets - preds, s=6, alpha=min(0.6, max(0.05, 300 / max(1, len(preds)))), linewidths=0)
    ax.axhline(0, color="gray", linestyle="--")
    ax.set_xlabel(f"predicted {target_name}")
    ax.set_ylabel("residual (actual - predicted)")
    return save_png(fig, path)


def importance_png(rows, label, path=None):
    """Horizontal bars of permutation importance with the spread over repeats; label names the axis
    ('rise in RMSE', 'drop in accuracy')."""
    rows = rows[:25][::-1]  # most important on top
    fig, ax = _figure(6, 0.8 + 0.28 * max(1, len(rows)))
    ax.barh([r["column"] for r in rows], [r["importance"] for r in rows], xerr=[r["std"] for r in rows],
            color="#4c78a8", ecolor="#1d2430", capsize=2)
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_xlabel(f"{label} when the column is shuffled")
    return save_png(fig, path)


def embedding_png(points, labels, column, max_labels=60, path=None):
    """(K, 2) points of one column's categories (PCA of its embedding), each labelled with its category."""
    points = np.asarray(points, dtype=np.float64)
    fig, ax = _figure(6, 5)
    ax.scatter(points[:, 0], points[:, 1], s=14, color="#4c78a8")
    # with many categories, label those farthest from the centre: the ones the model set apart
    far = np.argsort(-np.linalg.norm(points - points.mean(0), axis=1))[:max_labels]
    for i in far:
        ax.annotate(str(labels[i])[:24], points[i], fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.set_title(f"embedding of {column!r} (PCA)")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    return save_png(fig, path)
