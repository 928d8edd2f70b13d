"""A simulated workbench user, to measure how many actions labeling a folder takes: lasso a
cluster of the 2D layout, click away the odd ones out, name it; find similar; compared with
labeling one image at a time.

The simulated person uses only what the workbench shows: the layout (PCA, then LDA once two
labels exist), the images inside a region (seeing an image means knowing its class: with fewer
than 600 images on screen the map draws thumbnails, and the grid shows every selected image),
and the labels given so far. Every click, key press and lasso counts as one action, including
each image clicked away from a selection and each switch of projection.

>>> result = simulate_cluster_labeling(vectors, truth, target=0.9)   # doctest: +SKIP
>>> result["actions"], result["one_at_a_time"], result["ratio"]      # doctest: +SKIP
(61, 336, 0.18)
"""
import numpy as np

from ..core.errors import CentaurError
from .projection import project
from .similar import SimilarIndex

# Region sizes a person draws: k-means on the unlabeled points of the layout at these k. A k-means
# cluster is a Voronoi cell, so a lasso hugging its convex hull holds no other unlabeled point
# (labeled points inside it are counted, and clicked away if they carry another label).
CLUSTER_COUNTS = (1, 2, 4, 8, 16, 32)
GRID_LIMIT = 400  # the page shows the first 400 selected images; a person cannot vet more
SIMILAR_K = (20, 200)  # the page asks for max(20, min(200, 2 x selected)) similar images
PREDICTED_LIMIT = 200  # "select predicted" selects the 200 most confident images of the class


def simulate_cluster_labeling(vectors, truth, target=0.9, method="pca", separate=True, similar=True,
                              predicted=False, seed=0, max_rounds=1000):
    """Simulate a person labeling every image of `vectors` (N, D) whose classes are `truth` (N,).

    Each round the person takes the move that labels the most images per action:
      - lasso a region of the layout (1), click away each image of another class, or already
        labeled otherwise (1 each), and press the label's key (1);
      - lasso a labeled class again (1), press "find similar" (1), click away the odd proposals
        (1 each) and press the label's key (1);
      - with `predicted`: train (1), choose a class and "select predicted" (2), click away the
        wrong ones (1 each) and label (1);
      - lasso a single image (1) and press its key (1): the fallback for stragglers.
    With `separate`, once two classes have two labels each the person switches the layout to
    LDA ("separate the labels", 1 key press), which is recomputed after every label.
    Labels are always right (the person checks every selected image), so the run stops when
    `target` of all images are labeled.

    Returns a dict: actions, labeled, one_at_a_time (labeling target x N images one action
    each), ratio (actions / one_at_a_time), and per-move counts in `moves` and `log`.

    >>> result = simulate_cluster_labeling(np.random.rand(60, 8), np.repeat([0, 1, 2], 20))  # doctest: +SKIP
    """
    from sklearn.cluster import KMeans
    vectors = np.asarray(vectors, dtype=np.float32)
    truth = np.asarray(truth)
    if vectors.ndim != 2 or truth.shape != (len(vectors),):
        raise CentaurError(f"need vectors (N, D) and one true class per row, got {vectors.shape} and {truth.shape}.")
    if not 0 < target <= 1:
        raise CentaurError(f"target is a fraction of images in (0, 1], got {target!r}.")
    n = len(vectors)
    needed = int(np.ceil(target * n))
    classes, truth = np.unique(truth, return_inverse=True)  # truth -> 0..K-1
    labels = np.full(n, -1, dtype=np.int64)  # what the person has labeled so far
    index = SimilarIndex(vectors) if similar else None
    last_group = {}  # label -> rows of its latest action: what a person lassoes again for "find similar"
    raw, vectors = vectors, _row_space(vectors)  # the head trains on the cached vectors as they are
    actions, view, log = 0, method, []
    moves = {"lasso": 0, "similar": 0, "prediction": 0, "single": 0, "switch": 0, "clicks_away": 0}
    coords, coords_key = None, None
    for _ in range(max_rounds):
        if (labels >= 0).sum() >= needed:
            break
        counts = np.bincount(labels[labels >= 0], minlength=len(classes))
        if separate and view != "lda" and (counts >= 2).sum() >= 2:
            view, actions = "lda", actions + 1  # one key press: the page recomputes LDA on every label
            moves["switch"] += 1
        key = (view, int((labels >= 0).sum()))
        if coords_key != key:
            coords = project(vectors, view, labels=labels if view == "lda" else None, seed=seed)
            coords_key = key
        candidates = []  # (gain, cost, kind, rows to label, label)
        unlabeled = np.flatnonzero(labels < 0)
        if similar:
            for label in np.flatnonzero(counts):
                for query in (np.flatnonzero(labels == label), last_group[label]):
                    k = max(SIMILAR_K[0], min(SIMILAR_K[1], 2 * len(query)))
                    found, _ = index.query(query, k=k, exclude=np.flatnonzero(labels >= 0))
                    right = found[truth[found] == label]
                    # lasso the group (1), find similar (1), click away the rest, press the key (1)
                    candidates.append((len(right), 3 + len(found) - len(right), "similar", right, label))
        if predicted and len(np.flatnonzero(counts)) >= 2 and counts[counts > 0].min() >= 2:
            candidates += _prediction_moves(raw, labels, truth, classes)
        row = unlabeled[0]
        candidates.append((1, 2, "single", np.array([row]), truth[row]))
        # Lassos: scored first as if no labeled image lay inside (a bound: those only add clicks),
        # then exactly, best bound first, until no bound can beat the best exact move.
        regions = []
        for k in CLUSTER_COUNTS:
            if len(unlabeled) >= k:
                cluster = KMeans(k, n_init=1, random_state=seed).fit_predict(coords[unlabeled])  # (U,)
                regions += [unlabeled[cluster == c] for c in range(k)]
        bounds = [(_lasso_move(members, labels, truth), members) for members in regions]
        bounds.sort(key=lambda b: _score(b[0]), reverse=True)
        best = max(candidates, key=_score)
        for bound, members in bounds:
            if _score(bound) <= _score(best):
                break
            inside = np.union1d(members, _labeled_inside(coords, members, labels))
            if len(inside) <= GRID_LIMIT:
                best = max(best, _lasso_move(inside, labels, truth), key=_score)
        gain, cost, kind, rows, label = best
        labels[rows] = label
        last_group[label] = rows
        actions += cost
        moves[kind] += 1
        moves["clicks_away"] += cost - {"similar": 3, "prediction": 4}.get(kind, 2)
        log.append(dict(move=kind, labeled=int(gain), actions=int(cost), view=view))
    labeled = int((labels >= 0).sum())
    if (labels[labels >= 0] != truth[labels >= 0]).any():  # the simulated person checks every image it labels
        raise RuntimeError("the simulated person gave a wrong label: a mistake in this simulation, not in the data.")
    one_at_a_time = needed
    return dict(actions=int(actions), labeled=labeled, images=n, target=target, one_at_a_time=one_at_a_time,
                ratio=actions / one_at_a_time, moves=moves, log=log, classes=[str(c) for c in classes])


def _prediction_moves(vectors, labels, truth, classes):
    """Train (1), pick a class (1), "select predicted" (1): the unlabeled images predicted as it, most
    confident first, as many as the page selects; click away the wrong ones (1 each), label (1)."""
    from .learn import train_head
    result = train_head(vectors, [str(classes[k]) if k >= 0 else None for k in labels], folds=2)
    index = {name: k for k, name in enumerate(map(str, classes))}
    unlabeled = np.flatnonzero(labels < 0)
    probs = result.probs[unlabeled]  # (U, C) over the classes trained on
    predicted = probs.argmax(1)
    moves = []
    for c, name in enumerate(result.classes):
        rows = unlabeled[predicted == c]
        rows = rows[np.argsort(-probs[predicted == c, c], kind="stable")][:PREDICTED_LIMIT]
        right = rows[truth[rows] == index[name]]
        if len(right):
            moves.append((len(right), 4 + len(rows) - len(right), "prediction", right, index[name]))
    return moves


def _score(move):
    """Images labeled per action, then images labeled: which move a person makes first."""
    return (move[0] / move[1], move[0])


def _row_space(vectors):
    """Unit-length rows rotated into the basis of their own span: (N, min(N, D)).

    Lengths and angles between rows are kept, so PCA and LDA lay them out exactly as they do the
    original vectors (up to the sign of an axis), with smaller matrices to decompose every round."""
    x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # (N, D)
    if x.shape[0] >= x.shape[1]:
        return x
    _, _, basis = np.linalg.svd(x, full_matrices=False)  # (N, D): orthonormal rows spanning x's rows
    return x @ basis.T  # (N, N)


def _labeled_inside(coords, members, labels):
    """Labeled rows inside the convex hull of `members` in the layout (a lasso around them takes them too)."""
    from scipy.spatial import Delaunay, QhullError
    labeled = np.flatnonzero(labels >= 0)
    if len(members) < 3 or not len(labeled):
        return np.zeros(0, dtype=np.int64)
    try:
        hull = Delaunay(coords[members])
    except QhullError:  # all on one line: a lasso that thin takes nothing else
        return np.zeros(0, dtype=np.int64)
    return labeled[hull.find_simplex(coords[labeled]) >= 0]


def _lasso_move(inside, labels, truth):
    """Best label for a lasso over `inside`: (gain, cost, 'lasso', rows labeled, label)."""
    best = None
    for label in np.unique(truth[inside]):
        # click away: unlabeled images of another class, and images labeled otherwise (they would be
        # relabeled); images already labeled `label` may stay
        away = ((truth[inside] != label) & (labels[inside] != label)).sum()
        gained = inside[(truth[inside] == label) & (labels[inside] < 0)]
        move = (len(gained), 2 + int(away), "lasso", gained, label)
        if best is None or (move[0] / move[1], move[0]) > (best[0] / best[1], best[0]):
            best = move
    return best
