"""Training from labels: a logistic-regression head on real pretrained features of data/emoji,
its cross-validated accuracy and interval, and the active-learning queue and fade mask."""
import numpy as np
import pytest
import torch
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.core.images import open_image
from centaur.data.getters import get_image_files
from centaur.label.learn import (HeadResult, confident, review_queue, stratified_folds, train_head,
                                 uncertainty)

from conftest import EMOJI

SIZE = 96  # small for speed; the workbench's default is 160


def embed(files, size=SIZE):
    """Pooled final-layer features (N, 1280) of pretrained EfficientNet-Lite0, images squished to
    size x size and normalized as its weights expect; written here from the parts (the workbench's
    own embedder is tested on its own)."""
    from centaur.models.backbones import create_backbone
    from centaur.models.heads import body_of
    backbone, prep = create_backbone("lite0", pretrained=True)
    body = body_of(backbone).eval()
    mean, std = torch.tensor(prep["mean"]).view(1, 3, 1, 1), torch.tensor(prep["std"]).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(files), 64):
            pixels = [np.asarray(open_image(f).resize((size, size), Image.BILINEAR)) for f in files[start:start + 64]]
            xb = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W)
            out.append(body((xb - mean) / std).mean((2, 3)))  # (B, 1280, h, w) -> (B, 1280)
    return torch.cat(out).numpy()


@pytest.fixture(scope="module")
def emoji():
    files = get_image_files(EMOJI)
    return files, embed(files), [f.parent.name for f in files]


def test_cross_validated_accuracy_on_real_features(emoji):
    files, features, labels = emoji
    result = train_head(features, labels)
    classes = sorted(set(labels))
    assert isinstance(result, HeadResult) and result.classes == classes and len(classes) == 6
    assert result.num_labeled == len(files) and result.folds == 5
    assert result.counts == {c: labels.count(c) for c in classes}
    # six balanced classes: chance and the majority class are both about 0.17
    assert result.accuracy > 0.7
    low, high = result.interval
    assert low <= result.accuracy <= high and high - low < 0.15 and low > 0.6
    assert result.weight.shape == (6, 1280) and result.bias.shape == (6,) and result.weight.dtype == np.float32
    assert result.probs.shape == (len(files), 6)
    np.testing.assert_allclose(result.probs.sum(1), 1, atol=1e-5)
    targets = np.array([classes.index(y) for y in labels])
    assert (result.probs.argmax(1) == targets).mean() == pytest.approx(result.accuracy)
    assert 0 < result.seconds < 60


def test_unlabeled_rows_get_the_full_models_predictions(emoji):
    _, features, labels = emoji
    given = [y if i % 3 == 0 else None for i, y in enumerate(labels)]
    mask = np.array([y is not None for y in given])
    result = train_head(features, given)
    assert result.num_labeled == mask.sum()
    full = result.predict_proba(features)  # weights act on raw features: standardization folded in
    np.testing.assert_allclose(result.probs[~mask], full[~mask], atol=1e-5)
    # labeled rows are out-of-fold, so they differ from the full model that saw them
    assert np.abs(result.probs[mask] - full[mask]).max() > 0.05
    held_out = (np.array(result.predict(features))[~mask] == np.array(labels)[~mask]).mean()
    assert held_out > 0.65


def test_same_seed_same_result_and_standardization_folded_in(emoji):
    _, features, labels = emoji
    a, b = train_head(features, labels, seed=3), train_head(features, labels, seed=3)
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.probs, b.probs) and a.interval == b.interval
    # the weights in raw feature space give what the standardized model gives
    mean, std = features.mean(0), features.std(0)
    std[std < 1e-6] = 1
    w_std = a.weight * std  # (K, D)
    b_std = a.bias + (mean / std) @ w_std.T
    logits = ((features - mean) / std) @ w_std.T + b_std
    np.testing.assert_allclose(logits, features @ a.weight.T + a.bias, rtol=1e-3, atol=1e-3)


def test_works_inside_inference_mode_and_keeps_the_thread_setting(emoji):
    _, features, labels = emoji
    threads = torch.get_num_threads()
    with torch.inference_mode():
        result = train_head(features[::5], labels[::5])
    assert result.folds >= 2 and torch.get_num_threads() == threads


def test_too_few_labels_say_which_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    with pytest.raises(CentaurError, match="'dog' has 1"):
        train_head(x, ["cat"] * 4 + ["dog"] + [None] * 4)
    with pytest.raises(CentaurError, match="at least 2 classes, got only 'cat'"):
        train_head(x, ["cat"] * 5 + [None] * 4)
    with pytest.raises(CentaurError, match="no labels"):
        train_head(x, [None] * 9)
    with pytest.raises(CentaurError, match="9 feature rows but 8 labels"):
        train_head(x, ["cat"] * 8)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(CentaurError, match="NaN"):
        train_head(bad, ["cat", "dog"] * 4 + [None])


def test_folds_shrink_to_the_smallest_class_and_stay_stratified():
    rng = np.random.default_rng(1)
    y = ["a"] * 3 + ["b"] * 10
    x = (rng.normal(size=(13, 4)) + np.array([[3, 0, 0, 0]]) * np.array([v == "a" for v in y])[:, None]).astype(np.float32)
    result = train_head(x, y, folds=5)
    assert result.folds == 3
    fold = stratified_folds(np.array([0] * 3 + [1] * 10), 3, seed=0)
    for k in range(3):
        assert (fold[:3] == k).sum() == 1 and 3 <= (fold[3:] == k).sum() <= 4
    # NaN (a pandas gap) and '' are unlabeled too
    result = train_head(x, y[:11] + [float("nan"), ""], folds=2)
    assert result.num_labeled == 11 and result.counts == {"a": 3, "b": 8}


def planted(probs):
    probs = np.asarray(probs, dtype=np.float64)
    return HeadResult(["a", "b", "c"], np.zeros((3, 2), np.float32), np.zeros(3, np.float32), 0.5, (0.4, 0.6),
                      2, {"a": 1, "b": 1}, 2, 0.0, probs)


def test_uncertainty_orders_a_planted_case():
    probs = [[0.98, 0.01, 0.01],   # 0 sure
             [0.50, 0.49, 0.01],   # 1 torn between two: most uncertain
             [0.34, 0.33, 0.33],   # 2 spread thin, also torn
             [0.70, 0.20, 0.10],   # 3 fairly sure
             [0.45, 0.45, 0.10],   # 4 exact tie: margin 0
             [0.05, 0.90, 0.05]]   # 5 labeled already
    u = uncertainty(probs)
    np.testing.assert_allclose(u, [0.03, 0.99, 0.99, 0.5, 1.0, 0.15], atol=1e-9)
    labeled = np.array([False, False, False, False, False, True])
    result = planted(probs)
    assert review_queue(result.probs, labeled).tolist() == [4, 1, 2, 3, 0]  # ties keep row order
    assert review_queue(result.probs, labeled, limit=2).tolist() == [4, 1]
    assert confident(result, 0.9).tolist() == [True, False, False, False, False, True]
    assert confident(result, 0.95).tolist() == [True] + [False] * 5
    with pytest.raises(CentaurError, match="one entry per image"):
        review_queue(result.probs, labeled[:3])
    with pytest.raises(CentaurError, match="threshold"):
        confident(result, 1.5)
    with pytest.raises(CentaurError, match="K >= 2"):
        uncertainty(np.ones((3, 1)))


def test_queue_and_fade_on_real_features(emoji):
    _, features, labels = emoji
    given = [y if i % 4 == 0 else None for i, y in enumerate(labels)]
    mask = np.array([y is not None for y in given])
    result = train_head(features, given)
    queue = review_queue(result.probs, mask, limit=50)
    assert len(queue) == 50 and not mask[queue].any()
    u = uncertainty(result.probs)
    assert np.all(np.diff(u[queue]) <= 1e-12) and u[queue[0]] == u[~mask].max()
    faded = confident(result, 0.9)
    # what the model is sure of it mostly gets right: active learning's premise, on real data
    truth = np.array(labels)
    sure = faded & ~mask
    assert sure.sum() > 10 and (np.array(result.predict(features))[sure] == truth[sure]).mean() > 0.85
