"""Datasets and DataLoaders: items to uint8 tensors, batches to normalized float tensors."""
import copy
import hashlib
import json
import math
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader as TorchLoader, Dataset

from ..core.errors import CentaurError
from ..core.figures import new_figure, save_png
from ..core.words import named
from .getters import image_paths


class Datasets(Dataset):
    """Items with their labels; __getitem__ gives (x uint8 (3, H, W), y tensor).

    cache: decoded PIL images by index; tensors: finished x tensors by index (validation);
    encoded: the labels already encoded, in order (DataBlock checks them all up front).
    """

    def __init__(self, xs, ys, x_block, y_block, item_tfms, train, cache=None, tensors=None, encoded=None):
        self.xs, self.ys, self.x_block, self.y_block = list(xs), list(ys), x_block, y_block
        self.item_tfms, self.train, self.cache = item_tfms, train, cache or {}
        # deterministic item transforms on a cached image give the same tensor every epoch
        self._deterministic = not train or not any(getattr(t, "random", False) for t in item_tfms)
        self._tensors = dict(tensors or {})
        self._encoded = list(encoded) if encoded is not None else None

    def __len__(self):
        return len(self.xs)

    def load_x(self, i):
        if i in self._tensors:
            return self._tensors[i]
        img = self.cache.get(i)
        if img is None:
            img = self.x_block.load(self.xs[i])
        for tfm in self.item_tfms:
            img = tfm(img, train=self.train)
        t = self.x_block.to_tensor(img)  # (3, H, W) uint8
        if self._deterministic and i in self.cache:
            self._tensors[i] = t
        return t

    def load_y(self, i):
        if self.y_block is None:
            return torch.tensor(0)
        if self._encoded is not None:
            return self._encoded[i]
        return self.y_block.encode(self.ys[i])

    def __getitem__(self, i):
        return self.load_x(i), self.load_y(i)

    @property
    def vocab(self):
        return getattr(self.y_block, "vocab", None)


def _collate(batch):
    xs, ys = zip(*batch)
    if len({x.shape for x in xs}) > 1:
        raise CentaurError(f"images in a batch have different sizes {sorted({tuple(x.shape) for x in xs})}; "
                           "add an item transform such as Resize(128).")
    return torch.stack(xs), torch.stack(ys)


class DataLoader:
    """Batches of (x float (B, 3, H, W) normalized, y); augmentation only when training."""

    def __init__(self, dataset, bs=64, shuffle=False, drop_last=False, batch_tfms=(), mean=None, std=None,
                 seed=None, num_workers=0):
        self.dataset, self.bs, self.shuffle, self.drop_last = dataset, bs, shuffle, drop_last
        self.batch_tfms = list(batch_tfms)
        self.mean, self.std = mean, std
        # Without a seed the order follows torch's global generator, so set_seed decides it; a
        # fresh torch.Generator() would shuffle identically in every run whatever the seed.
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.num_workers = num_workers
        self.rank, self.world_size, self.split_batches = 0, 1, True  # see shard()
        self.device = None  # where augmentation runs: a GPU when the Learner trains on one (DataLoaders.to)

    def __len__(self):
        if self.world_size > 1:
            return len(self._batch_sampler())
        n = len(self.dataset) / self.bs
        return math.floor(n) if self.drop_last else math.ceil(n)

    def shard(self, rank, world_size, split_batches=True):
        """A copy that yields only process `rank`'s share of each epoch (see data/shard.py).

        split_batches=True (training): each global batch of bs items is split among the
        processes; False (validation): a contiguous share of the items. The copy shares the
        generator, so a checkpoint of the original saves and restores its shuffle.

        >>> mine = dls.train.shard(rank=0, world_size=2)  # doctest: +SKIP
        """
        dl = copy.copy(self)
        dl.rank, dl.world_size, dl.split_batches = rank, world_size, split_batches
        return dl

    def _batch_sampler(self):
        from torch.utils.data import RandomSampler
        from .shard import ShardedBatchSampler
        n = len(self.dataset)
        # the same RandomSampler a single process uses, so every process draws its order
        order = (lambda: RandomSampler(range(n), generator=self.generator)) if self.shuffle else None
        return ShardedBatchSampler(n, self.bs, self.rank, self.world_size, order, self.drop_last,
                                   self.split_batches)

    def _torch_loader(self):
        if self.world_size > 1:
            # the generator too: torch's loader draws a seed from it before the shuffle, as for one process
            return TorchLoader(self.dataset, batch_sampler=self._batch_sampler(), collate_fn=_collate,
                               generator=self.generator, num_workers=self.num_workers)
        return TorchLoader(self.dataset, batch_size=self.bs, shuffle=self.shuffle, drop_last=self.drop_last,
                           collate_fn=_collate, generator=self.generator, num_workers=self.num_workers)

    def process(self, xb, augment):
        """uint8 (B, 3, H, W) -> float in [0, 1] -> augmentation -> normalized, channels_last."""
        if self.device is not None:  # uint8 crosses to the GPU: a quarter of the bytes of float
            xb = xb.to(self.device, non_blocking=True)
        xb = xb.float().div_(255)
        for tfm in self.batch_tfms:
            tfm.train(augment)
            xb = tfm(xb)
        if self.mean is not None:
            mean = torch.tensor(self.mean, device=xb.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=xb.device).view(1, -1, 1, 1)
            xb = (xb - mean) / std
        # channels_last makes CPU convolutions faster (oneDNN prefers NHWC)
        return xb.contiguous(memory_format=torch.channels_last)

    def __iter__(self):
        for xb, yb in self._torch_loader():
            yield self.process(xb, augment=self.dataset.train), yb

    def one_batch(self):
        return next(iter(self))


class DataLoaders:
    """The training and validation DataLoader, and what the model needs to know about the data."""

    def __init__(self, train_ds, valid_ds, bs=64, batch_tfms=(), seed=None, num_workers=0, splitter=None):
        self.train_ds, self.valid_ds, self.bs, self.splitter = train_ds, valid_ds, bs, splitter
        self.train = DataLoader(train_ds, bs, shuffle=True, drop_last=len(train_ds) > bs, batch_tfms=batch_tfms,
                                seed=seed, num_workers=num_workers)
        self.valid = DataLoader(valid_ds, bs, shuffle=False, batch_tfms=batch_tfms, num_workers=num_workers)

    @property
    def vocab(self):
        return self.train_ds.vocab

    def __repr__(self):
        """'<DataLoaders: 96 training and 24 validation items, bs 16; 3 classes (animal, face, food)>'"""
        return (f"<{type(self).__name__}: {len(self.train_ds):,} training and {len(self.valid_ds):,} validation items, "
                f"bs {self.bs}{_classes_text(self.y_block)}>")

    def fingerprint(self):
        """A short hash of what training sees: the files on each side of the split with their labels,
        the item transforms and the augmentation. A checkpoint keeps it, so resuming with another
        seed, split, size, resize or folder is refused instead of mixing two runs.

        >>> dls.fingerprint()  # doctest: +SKIP
        'a3f0c19e4b2d7788'
        """
        def key(x):  # a file by its path; an image given as a tensor by its pixels
            return hashlib.sha256(x.numpy().tobytes()).hexdigest() if torch.is_tensor(x) else str(x)

        parts = {side: [[key(x), str(y)] for x, y in zip(ds.xs, ds.ys)]
                 for side, ds in (("train", self.train_ds), ("valid", self.valid_ds))}
        parts["item_tfms"] = [t.to_dict() if hasattr(t, "to_dict") else type(t).__name__ for t in self.item_tfms]
        parts["batch_tfms"] = [repr(t) for t in self.train.batch_tfms]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def y_block(self):
        return self.train_ds.y_block

    @property
    def item_tfms(self):
        return self.train_ds.item_tfms

    def set_normalization(self, mean, std):
        """Normalize inputs with the statistics the pretrained weights expect."""
        for dl in (self.train, self.valid):
            dl.mean, dl.std = tuple(mean), tuple(std)

    def to(self, device):
        """Augment and normalize batches on `device` (a GPU: the Learner calls this when it trains
        on one); the CPU still decodes and resizes each image. Returns self."""
        device = torch.device(device)
        for dl in (self.train, self.valid):
            dl.device = None if device.type == "cpu" else device
        return self

    def test_dl(self, xs, bs=None):
        """A DataLoader over new items (paths: a list, or one file or folder), processed like validation data."""
        if isinstance(xs, (str, os.PathLike)):  # one path, not its characters
            xs = image_paths(xs)
        ds = Datasets(xs, [None] * len(xs), self.train_ds.x_block, None, self.item_tfms, train=False)
        dl = DataLoader(ds, bs or self.bs, batch_tfms=self.valid.batch_tfms, mean=self.valid.mean,
                        std=self.valid.std)
        dl.device = self.valid.device
        return dl

    def show_batch(self, path=None, max_n=16, train=True):
        """A grid of a batch (augmented if train) with labels: written to `path` (a PNG file;
        returns the path), or without one returned as PNG bytes, which a notebook shows."""
        dl = self.train if train else self.valid
        xb, yb = next(iter(dl._torch_loader()))
        xb = dl.process(xb, augment=train)[:max_n].cpu()
        if dl.mean is not None:
            xb = xb * torch.tensor(dl.std).view(1, -1, 1, 1) + torch.tensor(dl.mean).view(1, -1, 1, 1)
        n = len(xb)
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig, axes = new_figure(2 * cols, 2.2 * rows, rows, cols)
        for ax in axes.flat:
            ax.axis("off")
        for ax, x, y in zip(axes.flat, xb, yb):
            ax.imshow(x.clamp(0, 1).permute(1, 2, 0).numpy())
            if self.y_block is not None:
                ax.set_title(_label_text(self.y_block.decode(y)), fontsize=9)
        png = save_png(fig, path, dpi=80)
        return png if path is None else Path(path)


def _classes_text(y_block):
    """'; 3 classes (animal, face, food)' for a classifier's loaders, '; regression' or '' otherwise."""
    vocab = getattr(y_block, "vocab", None)
    if not vocab:
        return "; regression" if getattr(y_block, "kind", None) == "regression" else ""
    return "; " + named("class", vocab, plural_form="classes")


def _label_text(label):
    """A decoded y as a short title: 'cat', 'cat, dog' (multi-label) or '3.25' (regression)."""
    if isinstance(label, (list, tuple)):
        return ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in label)
    return f"{label:.3g}" if isinstance(label, float) else str(label)
