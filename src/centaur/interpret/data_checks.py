"""Data checks: exact and near-duplicate images (within the data and across the split), and
likely label errors by confident learning on out-of-fold predicted probabilities.

Confident learning (Northcutt, Jiang and Chuang 2021, arXiv:1911.00068) is written here from
the paper, not taken from cleanlab (AGPL): per class j a threshold t_j, the mean probability
of class j over items labelled j; an item labelled i whose probabilities pass the threshold
of another class j, and whose most probable passing class is j, is a likely label error with
j as the suggested label. The probabilities come from a logistic regression on pretrained
embeddings, each item predicted by a model that never saw it (k-fold).
"""
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F


# Two signals. Pixels: the correlation of 24x24 thumbnails (brightness and contrast removed);
# resized or re-encoded copies score above 0.99, different emoji of one style at most 0.97
# (measured on data/emoji). Embeddings: pooled features of a pretrained network, which also see
# through crops, but score different pictures of one kind up to 0.97 too: only above 0.985 do
# they call a pair a near duplicate.
NEAR_DUPLICATE_PIXELS = 0.99
NEAR_DUPLICATE = 0.985


class ImageEmbedder:
    """Pooled feature vectors (N, C), L2-normalized, from a network's body.

    source: 'pretrained' (the ImageNet body of the model's architecture, when its weights ship
    offline: features that never saw these labels) or 'model' (the trained model's own body).
    """

    def __init__(self, predictor, source="pretrained"):
        from ..models.backbones import PACKAGED, create_backbone
        from ..models.fuse import fold_batchnorm
        from ..models.heads import body_of
        self.predictor = predictor
        arch = predictor.meta.get("arch")
        if source == "pretrained" and arch in PACKAGED:
            body = body_of(create_backbone(arch, pretrained=True)[0]).eval()
            size = next((t.size for t in predictor.item_tfms if hasattr(t, "size")), (224, 224))
            self.body, self.source = fold_batchnorm(body, torch.zeros(1, 3, *size)), f"pretrained {arch}"
        else:
            self.body, self.source = predictor.torch_model.body, "the trained model's body"

    @torch.inference_mode()
    def embed(self, files, batch_size=32):
        """(embeddings (M, C), pixel signatures (M, 3*24*24), kept indices, {index: error}) for the
        readable files; both kinds of rows are L2-normalized."""
        from .predictions import decoded_batches
        out, thumbs, kept, errors = [], [], [], {}
        for xb, idx in decoded_batches(self.predictor, files, errors, batch_size):  # xb (B, 3, H, W) uint8
            features = self.body(self.predictor.normalize(xb))  # (B, C, h, w)
            out.append(F.normalize(features.mean((2, 3)), dim=1))
            small = F.interpolate(xb.float(), size=(24, 24), mode="area").flatten(1)  # (B, 1728)
            thumbs.append(F.normalize(small - small.mean(1, keepdim=True), dim=1))
            kept.extend(idx)
        dim = out[0].shape[1] if out else 0
        if not out:
            return torch.zeros(0, dim), torch.zeros(0, 3 * 24 * 24), kept, errors
        return torch.cat(out), torch.cat(thumbs), kept, errors


def exact_duplicates(files):
    """Groups (lists of indices) of files with identical bytes."""
    by_hash = {}
    for i, f in enumerate(files):
        try:
            digest = hashlib.sha256(Path(f).read_bytes()).hexdigest()
        except OSError:
            continue
        by_hash.setdefault(digest, []).append(i)
    return [g for g in by_hash.values() if len(g) > 1]


def near_duplicates(embeddings, threshold=NEAR_DUPLICATE, chunk=2048):
    """Pairs (i, j, similarity) with i < j and cosine similarity >= threshold, most similar first.

    Computed in row chunks, so 50,000 images need 50,000 x chunk floats at a time, not N x N.
    """
    pairs = []
    n = len(embeddings)
    for start in range(0, n, chunk):
        sim = embeddings[start:start + chunk] @ embeddings.T  # (chunk, N)
        rows, cols = torch.nonzero(sim >= threshold, as_tuple=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if i < c:
                pairs.append((i, c, float(sim[r, c])))
    return sorted(pairs, key=lambda p: -p[2])


def duplicate_report(files, sides, embeddings, thumbs, kept, threshold=NEAR_DUPLICATE,
                     pixel_threshold=NEAR_DUPLICATE_PIXELS, root=None):
    """Exact and near duplicates, each pair marked 'across the split' when one side trains and
    the other validates (leakage: the validation score then flatters the model)."""
    pairs = {}
    # among the images that decode only: two copies of one broken file are not images that leak
    for group in exact_duplicates([files[i] for i in kept]):
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                pairs[(kept[group[a]], kept[group[b]])] = ("exact", 1.0)
    names = [str(f) for f in files] if root is None else [Path(f).relative_to(root).as_posix() for f in files]
    for i, j, s in near_duplicates(thumbs, pixel_threshold):
        pairs.setdefault((kept[i], kept[j]), ("near (pixels)", s))
    for i, j, s in near_duplicates(embeddings, threshold):
        pairs.setdefault((kept[i], kept[j]), ("near (content)", s))
    rows = [{"a": names[i], "b": names[j], "kind": kind, "similarity": round(s, 4),
             "across_split": sides[i] != sides[j]} for (i, j), (kind, s) in pairs.items()]
    return sorted(rows, key=lambda r: (not r["across_split"], -r["similarity"]))


def fit_logistic(features, labels, num_classes, wd=1e-3, max_iter=200):
    """A multinomial logistic regression (nn.Linear, logits = features @ W.T + b) fitted by LBFGS.

    Minimizes the mean cross-entropy + wd * |W|^2 (the bias is not penalized). The problem is
    convex, so starting from zeros gives one answer whatever the global random state.

    >>> linear = fit_logistic(torch.randn(20, 4), torch.arange(20) % 2, 2)  # doctest: +SKIP
    """
    linear = torch.nn.Linear(features.shape[1], num_classes).to(features.dtype)
    torch.nn.init.zeros_(linear.weight), torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(linear.parameters(), lr=1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(features), labels) + wd * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return linear.requires_grad_(False)


def out_of_fold_probs(features, labels, num_classes, folds=5, seed=0, epochs=200, wd=1e-3, fold=None):
    """(N, K) probabilities, each row from a logistic regression trained on the other folds.

    fold: (N,) fold number of each row (0 .. folds-1), for example stratified by class; by
    default a seeded random assignment.
    """
    n = len(labels)
    if fold is None:
        g = torch.Generator().manual_seed(seed)
        fold = torch.randperm(n, generator=g) % folds
    probs = torch.zeros(n, num_classes)
    for k in range(folds):
        test, train = fold == k, fold != k
        if test.sum() == 0 or train.sum() == 0:
            continue
        linear = fit_logistic(features[train], labels[train], num_classes, wd, epochs)
        with torch.no_grad():
            probs[test] = linear(features[test]).softmax(-1).float()
    return probs


def label_issues(probs, labels):
    """Confident learning: [(index, suggested class, p_given, p_suggested)], least self-confident first."""
    k = probs.shape[1]
    thresholds = torch.stack([probs[labels == j, j].mean() if (labels == j).any() else torch.tensor(1.0)
                              for j in range(k)])  # (K,)
    passing = probs >= thresholds  # (N, K)
    masked = torch.where(passing, probs, torch.full_like(probs, -1.0))
    best = masked.argmax(-1)  # most probable class that passes its threshold
    has = passing.any(-1)
    issues = []
    for i in torch.nonzero(has & (best != labels)).flatten().tolist():
        issues.append((i, int(best[i]), float(probs[i, labels[i]]), float(probs[i, best[i]])))
    return sorted(issues, key=lambda t: t[2])


def check_data(predictor, root, split, threshold=NEAR_DUPLICATE, source="pretrained", folds=5):
    """Duplicates and likely label errors over every file of the split (train and valid).

    Returns {'duplicates': [...], 'label_issues': [...], 'embedder': ..., 'n': images checked (read and
    embedded), 'unreadable': {file: reason} (left out of every check), 'sides': {file: 'train'|'valid'}}.
    """
    items = [(f, y, side) for side in ("train", "valid") for f, y in split[side]]
    files = [Path(root) / f for f, _, _ in items]
    embedder = ImageEmbedder(predictor, source)
    embeddings, thumbs, kept, errors = embedder.embed(files)
    duplicates = duplicate_report([Path(root) / f for f, _, _ in items], [s for _, _, s in items], embeddings,
                                  thumbs, kept, threshold, root=Path(root))
    classes = predictor.classes or []
    index = {c: i for i, c in enumerate(classes)}
    usable = [j for j, i in enumerate(kept) if items[i][1] in index]
    issues = []
    if len(usable) >= 2 * folds and len(classes) >= 2:
        labels = torch.tensor([index[items[kept[j]][1]] for j in usable])
        probs = out_of_fold_probs(embeddings[usable], labels, len(classes), folds)
        for j, suggested, p_given, p_suggested in label_issues(probs, labels):
            f, y, side = items[kept[usable[j]]]
            issues.append({"file": f, "label": y, "suggested": classes[suggested], "side": side,
                           "p_label": round(p_given, 4), "p_suggested": round(p_suggested, 4)})
    return {"duplicates": duplicates, "label_issues": issues, "embedder": embedder.source, "n": len(kept),
            "threshold": threshold, "unreadable": {items[i][0]: e for i, e in sorted(errors.items())},
            "sides": {items[i][0]: items[i][2] for i in errors}}
