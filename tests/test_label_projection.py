"""The workbench's 2D layouts (PCA, UMAP, LDA) and its "find similar" search."""
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

from centaur.core.errors import CentaurError
from centaur.label import projection
from centaur.label.projection import methods, project
from centaur.label.similar import SimilarIndex, similar

from conftest import EMOJI


@pytest.fixture(scope="module")
def emoji_vectors():
    """Last-layer embeddings of 40 real emoji in each of three classes, and their classes."""
    from centaur.label.embeddings import Embedder
    embedder = Embedder("lite0", size=128)
    classes = ("animal", "food", "transport")
    files = [f for cls in classes for f in sorted((EMOJI / cls).glob("*.png"))[:40]]
    vectors = np.concatenate([embedder.embed_batch(torch.stack([embedder.load(f) for f in files[i:i + 40]]))["last"]
                              for i in range(0, len(files), 40)])
    return vectors, np.repeat(np.arange(3), 40)


def some_labels(classes, per_class, seed=0):
    """classes with all but `per_class` images of each class unlabeled (-1)."""
    rng = np.random.default_rng(seed)
    labels = np.full(len(classes), -1)
    for c in np.unique(classes):
        chosen = rng.choice(np.flatnonzero(classes == c), per_class, replace=False)
        labels[chosen] = c
    return labels


def check_unit_square(xy, n):
    assert xy.shape == (n, 2) and xy.dtype == np.float32
    assert xy.min() >= 0 and xy.max() <= 1
    low, high = xy.min(0), xy.max(0)
    assert np.isclose((high - low).max(), 1, atol=1e-6)  # the longer side spans 0..1
    np.testing.assert_allclose(low + high, 1, atol=1e-6)  # both axes centred


# --- projections ---------------------------------------------------------------------------------

def test_methods_offer_lda_only_with_two_labels(monkeypatch):
    monkeypatch.setattr(projection, "umap_available", lambda: False)
    assert methods(0) == ["pca"] and methods(1) == ["pca"] and methods(2) == ["pca", "lda"]
    monkeypatch.setattr(projection, "umap_available", lambda: True)
    assert methods(3) == ["pca", "umap", "lda"]


@pytest.mark.parametrize("n", [500, 3000])  # full and randomized PCA
def test_pca_shape_range_and_determinism(n):
    x = np.random.default_rng(0).standard_normal((n, 64)).astype(np.float32) + 2
    a = project(x, "pca", seed=3)
    check_unit_square(a, n)
    np.testing.assert_array_equal(a, project(x, "pca", seed=3))


def test_pca_keeps_the_shape_of_the_data():
    """One scale for both axes: a cloud four times as long as it is wide stays so."""
    rng = np.random.default_rng(0)
    flat = rng.uniform(-1, 1, (2000, 2)) * [4.0, 1.0]  # (N, 2) a 4:1 rectangle
    x = np.concatenate([flat, np.full((2000, 1), 50.0)], 1)  # on the sphere (L2) it is still nearly flat
    xy = project(x, "pca")
    spans = np.sort(xy.max(0) - xy.min(0))
    assert np.isclose(spans[1], 1) and 0.2 < spans[0] < 0.3


def test_tiny_inputs():
    assert project(np.zeros((0, 8)), "pca").shape == (0, 2)
    np.testing.assert_array_equal(project(np.ones((1, 8)), "pca"), [[0.5, 0.5]])
    check_unit_square(project(np.eye(2, 8), "pca"), 2)


def test_lda_separates_labeled_classes_better_than_pca(emoji_vectors):
    """On real embeddings with 10 labeled images per class, the labeled classes stand further
    apart (silhouette) in the LDA layout than in the PCA one."""
    vectors, classes = emoji_vectors
    labels = some_labels(classes, 10)
    labeled = labels >= 0
    pca, lda = project(vectors, "pca"), project(vectors, "lda", labels=labels)
    check_unit_square(lda, len(vectors))
    np.testing.assert_array_equal(lda, project(vectors, "lda", labels=labels))
    pca_score = silhouette_score(pca[labeled], labels[labeled])
    lda_score = silhouette_score(lda[labeled], labels[labeled])
    assert lda_score > pca_score + 0.15, (lda_score, pca_score)


def test_lda_finds_a_difference_pca_cannot_see():
    """Two classes that differ only along a low-variance direction: PCA's two axes show the
    high-variance noise and mix them; LDA's first axis is the difference itself."""
    rng = np.random.default_rng(0)
    n, dims = 600, 64
    x = rng.standard_normal((n, dims)) * np.r_[np.full(4, 6.0), np.ones(dims - 4)] + 40  # (N, D)
    classes = np.arange(n) % 2
    x[:, 20] += np.where(classes == 1, 1.5, -1.5)  # the only difference: 1.5 std either way on one axis
    labels = some_labels(classes, 30)
    pca, lda = project(x, "pca"), project(x, "lda", labels=labels)
    check_unit_square(lda, n)
    assert lda[:, 1].std() > 0.05  # two labels: the second axis is the PCA of the rest, not a line
    unlabeled = labels < 0  # judged on images nobody labeled
    assert silhouette_score(lda[unlabeled], classes[unlabeled]) > 0.3
    assert silhouette_score(pca[unlabeled], classes[unlabeled]) < 0.05


@pytest.mark.parametrize("labels, message", [
    (None, "needs labels"),
    (np.full(40, -1), "found no labeled images"),
    (np.r_[np.zeros(5, int), np.full(35, -1)], "found label 0: 5 images"),
    (np.r_[[0, 0, 0, 1], np.full(36, -1)], "at least 2 labels with at least 2 images each; found label 0: 3 images, label 1: 1 image"),
    (np.zeros(39, int), r"shape \(40,\)"),
    (np.zeros(40), r"int array .* got float64"),
])
def test_lda_says_what_is_missing(labels, message):
    with pytest.raises(CentaurError, match=message):
        project(np.random.default_rng(0).standard_normal((40, 16)), "lda", labels=labels)


def test_unknown_method_and_bad_vectors():
    with pytest.raises(CentaurError, match="unknown projection 'pcaa'.*Did you mean: 'pca'"):
        project(np.ones((5, 3)), "pcaa")
    with pytest.raises(CentaurError, match="2D array"):
        project(np.ones(5), "pca")
    with pytest.raises(CentaurError, match="NaN or infinity"):
        project(np.full((5, 3), np.nan), "pca")


def test_umap_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # as if umap-learn were not installed
    with pytest.raises(CentaurError, match="pip install umap-learn"):
        project(np.random.default_rng(0).standard_normal((50, 8)), "umap")


def test_umap_layout(emoji_vectors):
    pytest.importorskip("umap", reason="umap-learn is optional")
    vectors, classes = emoji_vectors
    a = project(vectors, "umap", seed=1)
    check_unit_square(a, len(vectors))
    np.testing.assert_array_equal(a, project(vectors, "umap", seed=1))
    assert silhouette_score(a, classes) > silhouette_score(project(vectors, "pca"), classes) - 0.1


# --- find similar --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted():
    """5,000 random 256-d vectors; rows 0 and 1 (the query) and 10, 11, 12 all point near one
    direction, rows 10-12 ever less closely, and row 13 points exactly the other way."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 256)).astype(np.float32)
    direction = rng.standard_normal(256).astype(np.float32)
    for row, noise in ((0, 0.3), (1, 0.3), (10, 0.1), (11, 0.4), (12, 0.8)):
        x[row] = direction + noise * rng.standard_normal(256)
    x[11] *= 25  # cosine: length does not matter
    x[13] = -direction
    return x


@pytest.mark.parametrize("use_index", [False, True])
def test_similar_finds_the_planted_neighbours(planted, use_index):
    vectors = SimilarIndex(planted) if use_index else planted
    rows, scores = similar(vectors, [0, 1], k=5)
    assert rows[:3].tolist() == [10, 11, 12]
    assert rows.dtype == np.int64 and scores.dtype == np.float32 and len(rows) == 5
    assert np.all(np.diff(scores) <= 0) and scores[0] > 0.9 and scores[3] < 0.4
    assert 0 not in rows and 1 not in rows
    rows, _ = similar(vectors, [0, 1], k=5000)
    assert len(rows) == 4998 and rows[-1] == 13  # every other row, the opposite one last


def test_similar_index_agrees_with_float32(planted):
    rows, scores = similar(planted, [5, 6, 7], k=20)
    rows16, scores16 = SimilarIndex(planted).query([5, 6, 7], k=20)
    np.testing.assert_allclose(scores16, scores, atol=2e-3)
    assert len(set(rows[:10]) & set(rows16[:10])) >= 9  # only near-ties may swap


def test_similar_excludes_rows_and_masks(planted):
    rows, _ = similar(planted, [0, 1], k=3, exclude=[10])
    assert rows.tolist()[:2] == [11, 12]
    mask = np.zeros(len(planted), bool)
    mask[[10, 11]] = True
    rows, _ = similar(planted, np.isin(np.arange(len(planted)), [0, 1]), k=2, exclude=mask)
    assert rows.tolist()[0] == 12
    rows, _ = similar(planted[:4], [0], k=50, exclude=[1])
    assert sorted(rows.tolist()) == [2, 3]  # fewer rows left than k


def test_similar_never_returns_a_damaged_row(planted):
    x = planted[:100].copy()
    x[50] = np.nan
    rows, _ = similar(x, [0], k=99)
    assert 50 not in rows and len(rows) == 98


def test_similar_refuses_bad_queries(planted):
    with pytest.raises(CentaurError, match="at least one selected image"):
        similar(planted, [])
    with pytest.raises(CentaurError, match="row 5000, but there are only 5000 rows"):
        similar(planted, [1, 5000])
    with pytest.raises(CentaurError, match="k must be a positive int"):
        similar(planted, [1], k=0)
    with pytest.raises(CentaurError, match="row numbers"):
        similar(planted, [1.5])
