"""The DataBlock recipe: from a source (folder, CSV, DataFrame) to training and validation data."""
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from ..core.errors import CentaurError
from ..core.log import warn
from .blocks import ImageBlock, as_block
from .getters import read_table, table_items
from .loaders import DataLoaders, Datasets
from .splitters import RandomSplitter

CACHE_BYTES = 1 << 30  # decoded images kept in memory, so later epochs skip decoding


class DataBlock:
    """A declarative recipe for data: what x and y are, where items come from, how to split.

    >>> dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
    ...                    get_y=parent_label, splitter=RandomSplitter(0.2, seed=42),
    ...                    item_tfms=Resize(128), batch_tfms=aug_transforms())
    >>> dls = dblock.dataloaders("data/emoji", bs=32)  # doctest: +SKIP
    """

    def __init__(self, blocks=(ImageBlock, None), get_items=None, get_x=None, get_y=None,
                 splitter=None, item_tfms=None, batch_tfms=None):
        self.blocks, self.get_items, self.get_x, self.get_y = blocks, get_items, get_x, get_y
        self.splitter = splitter
        self.item_tfms = _listify(item_tfms)
        self.batch_tfms = _listify(batch_tfms)

    # --- the steps, each small enough for summary() to name where it broke ---

    def _items(self, source):
        if isinstance(source, pd.DataFrame) or (isinstance(source, (str, Path)) and Path(source).suffix.lower() in (".csv", ".parquet", ".pq")):
            items = table_items(read_table(source))
        elif self.get_items is None:
            raise CentaurError("DataBlock needs get_items (for example get_image_files) for a folder source.")
        else:
            items = list(self.get_items(source))
        if not items:
            raise CentaurError(f"no items found in {str(source)!r}; for images, expected files ending in "
                               ".jpg, .jpeg, .png, .bmp, .gif, .tif, .tiff or .webp (in subfolders is fine).")
        return items

    def _split(self, items):
        splitter = self.splitter or RandomSplitter(0.2, seed=0)
        train, valid = splitter(items)
        if not train or not valid:
            raise CentaurError(f"the split left {len(train)} training and {len(valid)} validation items; "
                               "both need at least one. Add data or change the split.")
        return train, valid

    def _xy(self, item, base):
        x = self.get_x(item) if self.get_x else item
        if isinstance(x, str) and base is not None and not Path(x).is_absolute():
            x = base / x
        y = self.get_y(item) if self.get_y else None
        return x, y

    def datasets(self, source, cache_bytes=CACHE_BYTES):
        """Training and validation Datasets. Unreadable images are listed and skipped."""
        x_block, y_block = (as_block(b) for b in self.blocks)
        items = self._items(source)
        train_idx, valid_idx = self._split(items)
        base = Path(source).parent if isinstance(source, (str, Path)) and Path(source).is_file() else None
        xs, ys = zip(*(self._xy(item, base) for item in items))
        cache, bad = {}, []
        if isinstance(x_block, ImageBlock):
            cache, bad = _load_all(x_block, xs, self.item_tfms, cache_bytes)
            if bad:
                listed = "\n  ".join(f"{x}: {reason}" for x, reason in bad[:20])
                more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
                warn(f"skipped {len(bad)} unreadable image(s):\n  {listed}{more}")
            bad_set = {str(x) for x, _ in bad}
            keep = lambda i: str(xs[i]) not in bad_set
            train_idx, valid_idx = [i for i in train_idx if keep(i)], [i for i in valid_idx if keep(i)]
            if not train_idx:
                raise CentaurError(f"none of the {len(items)} images in {str(source)!r} could be read.")
        if y_block is not None:
            y_block.setup([ys[i] for i in train_idx])
            _check_labels(y_block, ys, train_idx)
            if y_block.vocab is not None and y_block.kind == "single_label":
                vocab = set(y_block.vocab)
                unseen = [i for i in valid_idx if str(ys[i]) not in vocab]
                if unseen:
                    warn(f"{len(unseen)} validation item(s) have labels with no training example and are "
                         f"left out: {sorted({str(ys[i]) for i in unseen})}")
                    valid_idx = [i for i in valid_idx if str(ys[i]) in vocab]
        if not valid_idx:
            raise CentaurError("no validation items are left; add data or change the split.")
        make = lambda idx, train: Datasets([xs[i] for i in idx], [ys[i] for i in idx], x_block, y_block,
                                           self.item_tfms, train, {j: cache[i] for j, i in enumerate(idx) if i in cache})
        train_ds, valid_ds = make(train_idx, True), make(valid_idx, False)
        train_ds.source = valid_ds.source = str(source) if not isinstance(source, pd.DataFrame) else "DataFrame"
        train_ds.skipped = valid_ds.skipped = bad
        return train_ds, valid_ds

    def dataloaders(self, source, bs=64, seed=None, num_workers=0, **kwargs):
        """DataLoaders for training (shuffled, augmented) and validation."""
        if not isinstance(bs, int) or bs < 1:
            raise CentaurError(f"batch size must be a positive integer, got {bs!r}.")
        train_ds, valid_ds = self.datasets(source, **kwargs)
        return DataLoaders(train_ds, valid_ds, bs=bs, batch_tfms=self.batch_tfms, seed=seed,
                           num_workers=num_workers, splitter=self.splitter)

    def summary(self, source, n=4):
        """Walk one item through every step, printing what each makes; name the step that fails.

        >>> dblock.summary("data/emoji")  # doctest: +SKIP
        """
        step = "get_items"
        try:
            items = self._items(source)
            print(f"get_items: {len(items)} items; first: {items[0]!r}")
            step = "split"
            train_idx, valid_idx = self._split(items)
            print(f"split: {len(train_idx)} train, {len(valid_idx)} valid")
            item = items[train_idx[0]]
            step = "get_x / get_y"
            base = Path(source).parent if isinstance(source, (str, Path)) and Path(source).is_file() else None
            x, y = self._xy(item, base)
            print(f"get_x: {x!r}\nget_y: {y!r}")
            x_block, y_block = (as_block(b) for b in self.blocks)
            step = "open image"
            img = x_block.load(x)
            print(f"open image: {img.size[0]}x{img.size[1]} {img.mode}")
            for tfm in self.item_tfms:
                step = f"item transform {type(tfm).__name__}"
                img = tfm(img, train=True)
                print(f"{type(tfm).__name__}: {img.size[0]}x{img.size[1]}")
            step = "to tensor"
            t = x_block.to_tensor(img)
            print(f"to tensor: {tuple(t.shape)} {t.dtype}")
            if y_block is not None:
                step = "encode y"
                y_block.setup([self._xy(items[i], base)[1] for i in train_idx])
                print(f"encode y: {y!r} -> {y_block.encode(y)!r} (vocab: {y_block.vocab})")
            step = "batch transforms"
            xb = torch.stack([t] * n).float() / 255  # (n, 3, H, W)
            for tfm in self.batch_tfms:
                tfm.train()
                xb = tfm(xb)
                print(f"{type(tfm).__name__}: {tuple(xb.shape)}")
            if len({tuple(x_block.to_tensor(tfm_img).shape) for tfm_img in [img]}) != 1:
                raise CentaurError("items have different sizes; add item_tfms=Resize(size).")
        except Exception as e:
            msg = f"summary: the step '{step}' failed: {e}"
            print(msg)
            raise CentaurError(msg) from e
        print("summary: every step worked.")


def _listify(x):
    return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]


def _presize(img, item_tfms):
    """Shrink a big image to about twice the largest target size before caching it."""
    sizes = [max(t.size) for t in item_tfms if hasattr(t, "size")]
    if sizes:
        limit = 2 * max(sizes)
        if min(img.size) > limit:
            scale = limit / min(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), 1)  # 1: LANCZOS
    return img


def _load_all(x_block, xs, item_tfms, cache_bytes):
    """Decode every image once, in threads: bad ones are found now, good ones are cached."""
    def load(i):
        try:
            return i, _presize(x_block.load(xs[i]), item_tfms), None
        except Exception as e:  # ImageError or an OS error reading the file: list it, go on
            return i, None, str(e)

    cache, bad, used = {}, [], 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for i, img, err in pool.map(load, range(len(xs))):
            if err is not None:
                bad.append((xs[i], err))
            elif used < cache_bytes:
                cache[i] = img
                used += img.width * img.height * 3
    return cache, bad


def _check_labels(y_block, ys, train_idx):
    if y_block.kind != "single_label":
        return
    counts = pd.Series([str(ys[i]) for i in train_idx]).value_counts()
    if len(counts) < 2:
        raise CentaurError(f"found only one class ({counts.index[0]!r}); a classifier needs at least two. "
                           "Put each class's images in its own subfolder.")
    few = counts[counts < 2]
    if len(few):
        warn(f"classes with a single training image: {list(few.index)}; the model can hardly learn them. "
             "Add more images of these classes.")
