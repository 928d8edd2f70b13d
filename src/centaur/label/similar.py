"""Find similar: the images whose embeddings point the most like those of a selection.

A person lassoes a few images of a kind and asks for more like them; the answer ranks every
image by the cosine similarity of its vector to the mean direction of the selected ones. The
mean direction (not, say, the best match to any one selected image) asks for what the selected
images have in common, which is what the person selected them for.

>>> index = SimilarIndex(vectors)                 # doctest: +SKIP
>>> rows, scores = index.query([3, 17, 40], k=50)  # doctest: +SKIP
>>> rows, scores = similar(vectors, [3, 17, 40])   # doctest: +SKIP
"""
import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import CentaurError


class SimilarIndex:
    """Unit-length copies of the vectors, made once, so that each query is one matrix-vector
    product and a top-k.

    Stored as float16: on 2 CPU cores a query over 100,000 x 1280 vectors takes about 25 ms
    against 70 ms in float32 (a matrix-vector product only streams memory, and float16 is half
    as much; PyTorch's float16 matrix-vector product on the CPU also beats its bfloat16 one).
    Scores move by at most about 1e-3, which can only swap images that are equally similar,
    and the embedding cache keeps float16 anyway.

    >>> index = SimilarIndex(np.eye(3))
    >>> rows, scores = index.query([0], k=2)
    >>> rows.tolist()
    [1, 2]
    """

    def __init__(self, vectors):
        x = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
        if x.ndim != 2:
            raise CentaurError(f"vectors must be a 2D array (images, features), got shape {tuple(x.shape)}.")
        x = x.float()
        if not torch.isfinite(x).all():
            raise CentaurError("vectors contain NaN or infinity; the embedding cache is damaged: "
                               "delete the project's .centaur/embeddings folder to compute it again.")
        self.vectors = F.normalize(x, dim=1).half()  # (N, D), every row of length 1 (or 0)

    def __len__(self):
        return len(self.vectors)

    def query(self, query_rows, k=50, exclude=None):
        """(rows, scores): up to k rows, most similar first, never a query row or an `exclude` row."""
        query_rows, exclude = _check(query_rows, k, exclude, len(self.vectors))
        with torch.inference_mode():
            selected = self.vectors[query_rows].float()  # (Q, D)
            direction = F.normalize(selected.mean(0), dim=0)  # (D,)
            scores = (self.vectors @ direction.half()).float()  # (N,)
        return _best(scores, query_rows, exclude, k)


def similar(vectors, query_rows, k=50, exclude=None):
    """Rows most similar (cosine) to the mean direction of the query rows, best first.

    Searches all rows, leaving out the query rows and the `exclude` rows (indices, or a boolean
    mask). Returns (rows int64 (M,), scores float32 (M,)) with M = min(k, rows left). `vectors`
    is an (N, D) array or a SimilarIndex. An array is searched as it is, without a normalized
    copy: one matrix-vector product and one pass for the row lengths (about 2x one SimilarIndex
    query, which pays off from the third query on).

    >>> rows, scores = similar(np.array([[1.0, 0], [0.9, 0.1], [0, 1]]), [0], k=1)
    >>> rows.tolist()
    [1]
    """
    if isinstance(vectors, SimilarIndex):
        return vectors.query(query_rows, k=k, exclude=exclude)
    x = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
    if x.ndim != 2:
        raise CentaurError(f"vectors must be a 2D array (images, features), got shape {tuple(x.shape)}.")
    query_rows, exclude = _check(query_rows, k, exclude, len(x))
    with torch.inference_mode():
        x = x.float()  # no copy for float32, the cache's dtype
        lengths = torch.linalg.vector_norm(x, dim=1).clamp_min(1e-12)  # (N,)
        selected = x[query_rows] / lengths[query_rows, None]  # (Q, D) unit rows
        direction = F.normalize(selected.mean(0), dim=0)  # (D,)
        scores = (x @ direction) / lengths  # (N,) cosine similarities
    return _best(scores, query_rows, exclude, k)


def _check(query_rows, k, exclude, num_rows):
    query_rows = _rows(query_rows, num_rows, "query_rows")
    if not len(query_rows):
        raise CentaurError("find similar needs at least one selected image; select some first.")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise CentaurError(f"k must be a positive int (how many similar images to return), got {k!r}.")
    exclude = _rows(exclude, num_rows, "exclude") if exclude is not None else torch.zeros(0, dtype=torch.long)
    return query_rows, exclude


def _best(scores, query_rows, exclude, k):
    """The top k of scores (N,) outside query_rows and exclude: (rows int64, scores float32)."""
    scores = torch.nan_to_num(scores, nan=-torch.inf)  # a damaged row (NaN) is never "most similar"
    scores[query_rows] = -torch.inf
    scores[exclude] = -torch.inf
    top = torch.topk(scores, min(int(k), len(scores)))  # sorted, best first
    keep = torch.isfinite(top.values)  # fewer than k rows were left
    return top.indices[keep].numpy().astype(np.int64), top.values[keep].numpy().astype(np.float32)


def _rows(rows, num_rows, name):
    """Row indices (a list, an int array, or a boolean mask of length N) -> int64 tensor, checked."""
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (num_rows,):
            raise CentaurError(f"{name} as a boolean mask needs one entry per row ({num_rows}), "
                               f"got shape {rows.shape}.")
        rows = np.flatnonzero(rows)
    rows = rows.reshape(-1)
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise CentaurError(f"{name} must be row numbers (ints), got {rows.dtype} values.")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        bad = int(rows[(rows < 0) | (rows >= num_rows)][0])
        raise CentaurError(f"{name} has row {bad}, but there are only {num_rows} rows (0 to {num_rows - 1}).")
    return torch.from_numpy(rows)
