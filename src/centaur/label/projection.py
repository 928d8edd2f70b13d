"""2D layouts of embeddings for the workbench: PCA, UMAP, and LDA once labels exist.

Every method returns (N, 2) float32 in [0, 1]: the workbench draws the images there. Both
axes are scaled by one factor and centred, so a round cluster stays round and distances along
x and y can be compared by eye.

Vectors are L2-normalized first, in every method: pooled CNN activations differ in length
mostly by image contrast and busyness, not content, and cosine is what "find similar" ranks
by too, so near in the layout means similar in the search. (Per-feature standardization
instead lowered the 2D 5-nearest-neighbour accuracy of PCA on data/emoji's last layer from
0.65 to 0.56, by inflating channels that are nearly always zero.)

>>> xy = project(vectors, "pca")                          # doctest: +SKIP
>>> xy = project(vectors, "lda", labels=labels)           # doctest: +SKIP
"""
import numpy as np

from ..core.errors import CentaurError, did_you_mean

METHODS = ("pca", "umap", "lda")

# Above this many rows PCA uses randomized SVD (Halko et al. 2011, arXiv:0909.4061), which
# costs a few passes over the data instead of a full decomposition; 4 power iterations (not
# scikit-learn's 7) already give the top components' explained variance to 5 digits here.
RANDOMIZED_ABOVE = 2_000
# Above this many rows the components are fitted on a random sample of them, and every row is
# then transformed. On 100,000 vectors of 1280 dimensions the top two directions from a sample
# of 20,000 are within cosine 0.9995 of those from all rows, and the fit is 2.6x faster.
PCA_FIT_ROWS = 20_000
# LDA first reduces to this many principal components (fitted on all rows, labeled or not).
# LDA on all 1280 dimensions with a few dozen labeled images fits noise: on data/emoji with 10
# labels per class, images left out of the fit landed among their class's labeled images (3-NN
# in 2D) less often than after PCA; averaged over 2, 3 and 6 classes and 5, 10 and 30 labels
# per class, 8, 16, 32 and 64 dimensions scored 0.84, 0.84, 0.84 and 0.83, and 32 overfits the
# few-labels case least while keeping the labeled classes well apart.
LDA_DIMS = 32
# UMAP starts from this many principal components: its neighbour search is faster in fewer
# dimensions, and the first 64 components keep the neighbourhoods that matter.
UMAP_DIMS = 64


def methods(num_labels):
    """The projections available with `num_labels` distinct labels, in the order to offer them.

    >>> methods(0)        # doctest: +SKIP
    ['pca', 'umap']
    >>> methods(2)        # doctest: +SKIP
    ['pca', 'umap', 'lda']
    """
    found = ["pca"]
    if umap_available():
        found.append("umap")
    if num_labels >= 2:
        found.append("lda")
    return found


def umap_available():
    """Whether umap-learn can be imported (it is optional: it brings numba and llvmlite)."""
    from importlib.util import find_spec
    return find_spec("umap") is not None


def project(vectors, method, labels=None, seed=0):
    """(N, D) vectors -> (N, 2) float32 in [0, 1], one factor for both axes, centred.

    method: 'pca' (scikit-learn PCA, randomized above 2,000 rows, fitted on a sample of 20,000
    above that), 'umap' (umap-learn, if
    installed), or 'lda' (labels: int array (N,), -1 for unlabeled; LinearDiscriminantAnalysis
    with Ledoit-Wolf shrinkage fitted on the labeled rows, every row transformed, the axes in
    units of the labeled classes' spread). With two labels LDA has a single axis; the second is
    then the first principal component of what is left once that direction is removed. LDA
    needs at least two labels with at least two images each. The same seed gives the same layout.

    >>> xy = project(np.random.rand(100, 1280), "pca")
    >>> xy.shape, bool(xy.min() >= 0 and xy.max() <= 1)
    ((100, 2), True)
    """
    if method not in METHODS:
        raise CentaurError(f"unknown projection {method!r}; expected one of "
                           f"{', '.join(map(repr, METHODS))}.{did_you_mean(method, METHODS)}")
    x = _normalized(vectors)
    if len(x) < 3 and method != "lda":
        # too few points for a shape: lay them out side by side (a single image sits in the middle)
        return _unit_square(np.stack([np.arange(len(x)), np.zeros(len(x))], 1))
    if method == "pca":
        return _unit_square(_pca(x, 2, seed))
    if method == "umap":
        return _unit_square(_umap(x, seed))
    return _unit_square(_lda(x, labels, seed))


def _normalized(vectors):
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise CentaurError(f"vectors must be a 2D array (images, features), got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise CentaurError("vectors contain NaN or infinity; the embedding cache is damaged: "
                           "delete the project's .centaur/embeddings folder to compute it again.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (N, 1)
    return x / np.maximum(norms, 1e-12)


def _pca(x, num_components, seed):
    """(N, D) -> (N, num_components) principal component scores."""
    from sklearn.decomposition import PCA
    num_components = min(num_components, *x.shape)
    sample = x
    if len(x) > PCA_FIT_ROWS:
        rows = np.random.default_rng(seed).choice(len(x), PCA_FIT_ROWS, replace=False)
        sample = x[np.sort(rows)]
    if len(x) > RANDOMIZED_ABOVE:
        pca = PCA(num_components, svd_solver="randomized", iterated_power=4, random_state=seed)
    else:
        pca = PCA(num_components, svd_solver="full")
    return pca.fit(sample).transform(x)


def _umap(x, seed):
    try:
        import umap
    except ImportError as e:
        raise CentaurError("the 'umap' projection needs umap-learn, which is not installed; "
                           "install it with: pip install umap-learn  (or use 'pca').") from e
    reduced = _pca(x, UMAP_DIMS, seed) if x.shape[1] > UMAP_DIMS else x
    neighbours = min(15, len(x) - 1)
    # random_state makes the layout reproducible (umap-learn then runs on one thread)
    reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed, n_jobs=1,
                        init="spectral" if len(x) > neighbours + 2 else "random")
    return reducer.fit_transform(reduced)


def _lda(x, labels, seed):
    """(N, D) -> (N, 2): discriminant axes fitted on the labeled rows, in within-class std units."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    labels = _check_labels(labels, len(x))
    counts = {int(k): int(c) for k, c in zip(*np.unique(labels[labels >= 0], return_counts=True))}
    usable = sorted(k for k, c in counts.items() if c >= 2)
    if len(usable) < 2:
        have = ", ".join(f"label {k}: {c} image{'s' if c != 1 else ''}" for k, c in sorted(counts.items()))
        raise CentaurError("separating labels needs at least 2 labels with at least 2 images each; "
                           f"found {have or 'no labeled images'}. Label more images, or use 'pca'.")
    fit = np.isin(labels, usable)  # a label with a single image says nothing about its spread
    reduced = _pca(x, LDA_DIMS, seed) if x.shape[1] > LDA_DIMS else x - x.mean(0)  # (N, d)
    lda = LinearDiscriminantAnalysis(n_components=min(2, len(usable) - 1), solver="eigen", shrinkage="auto")
    lda.fit(reduced[fit], labels[fit])
    if len(usable) >= 3:
        xy = lda.transform(reduced)  # (N, 2)
    else:
        direction = lda.scalings_[:, 0] / np.linalg.norm(lda.scalings_[:, 0])  # (d,)
        first = reduced @ direction  # (N,)
        rest = reduced - np.outer(first, direction)  # (N, d), orthogonal to the discriminant
        second = _pca(rest, 1, seed)[:, 0]  # (N,)
        xy = np.stack([first, second], 1)
    # Put each axis in units of the labeled classes' own spread (pooled within-class std), so the
    # gap between two classes reads the same along x and y.
    centred = np.concatenate([xy[fit & (labels == k)] - xy[fit & (labels == k)].mean(0) for k in usable])
    spread = np.sqrt((centred ** 2).mean(0))  # (2,)
    return xy / np.maximum(spread, 1e-12)


def _check_labels(labels, n):
    if labels is None:
        raise CentaurError("the 'lda' projection needs labels: an int array with one entry per image, "
                           "-1 for unlabeled ones.")
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise CentaurError(f"labels must be an int array of shape ({n},) with -1 for unlabeled images, "
                           f"got {labels.dtype} {labels.shape}.")
    return labels.astype(np.int64)


def _unit_square(xy):
    """(N, 2) -> float32 in [0, 1]: centred, the longer side spanning 0..1, one scale for both axes."""
    xy = np.asarray(xy, dtype=np.float64)
    if not len(xy):
        return np.zeros((0, 2), np.float32)
    low, high = xy.min(0), xy.max(0)
    span = float((high - low).max())
    if span <= 0:
        return np.full(xy.shape, 0.5, np.float32)
    return np.clip((xy - (low + high) / 2) / span + 0.5, 0, 1).astype(np.float32)
