"""The DataBlock recipe: from a source (folder, CSV, DataFrame) to training and validation data."""
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from ..core.errors import CentaurError
from ..core.images import ImageError
from ..core.log import warn
from .blocks import ImageBlock, as_block
from .getters import is_missing, read_table, table_items
from .loaders import DataLoaders, Datasets
from .splitters import RandomSplitter

CACHE_BYTES = 1 << 30  # decoded images kept in memory, so later epochs skip decoding


class DataBlock:
    """A declarative recipe for data: what x and y are, where items come from, how to split.

    >>> from centaur.data.augment import aug_transforms
    >>> from centaur.data.blocks import CategoryBlock
    >>> from centaur.data.getters import get_image_files, parent_label
    >>> from centaur.data.splitters import RandomSplitter
    >>> from centaur.data.transforms import Resize
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

    def __repr__(self):
        """The recipe, one part a line, as it would be written (parts left as None are not shown)."""
        blocks = self.blocks if isinstance(self.blocks, (tuple, list)) else (self.blocks,)
        parts = [f"blocks=({', '.join(_recipe_part(b) for b in blocks)})"]
        parts += [f"{name}={_recipe_part(getattr(self, name))}" for name in ("get_items", "get_x", "get_y", "splitter")
                  if getattr(self, name) is not None]
        parts += [f"{name}=[{', '.join(_recipe_part(t) for t in getattr(self, name))}]"
                  for name in ("item_tfms", "batch_tfms") if getattr(self, name)]
        return "DataBlock(" + ",\n          ".join(parts) + ")"

    def _check_recipe(self):
        """The recipe's parts are of the right kind, checked when it is first used (fit validates):
        a number as item_tfms made every image 'unreadable', a float splitter 'not callable'."""
        for name in ("get_items", "get_x", "get_y", "splitter"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                example = {"splitter": "RandomSplitter(0.2)", "get_items": "get_image_files"}.get(name, "parent_label")
                raise CentaurError(f"{name} must be a function (such as {example}), got {type(value).__name__} "
                                   f"{value!r}.")
        for block in self.blocks:
            if isinstance(block, str):
                raise CentaurError(f"blocks are classes such as ImageBlock and CategoryBlock, got the text {block!r}.")
        for kind, tfms in (("item_tfms", self.item_tfms), ("batch_tfms", self.batch_tfms)):
            for t in tfms:
                if not callable(t):
                    raise CentaurError(f"{kind} holds {t!r}, which is not a transform; for a size use Resize({t!r})."
                                       if isinstance(t, int) else f"{kind} holds {t!r}, which is not a transform.")
                if kind == "batch_tfms" and not hasattr(t, "train"):
                    raise CentaurError(f"batch_tfms holds {getattr(t, '__name__', t)!r} itself; call it to make the "
                                       "transform, e.g. batch_tfms=aug_transforms().")

    # --- the steps, each small enough for summary() to name where it broke ---

    def _items(self, source):
        if isinstance(source, (list, tuple)):  # items given directly (file paths or table rows)
            items = list(source)
        elif _is_table(source):
            items = table_items(read_table(source))
            if not items:
                raise CentaurError(f"the table {_name(source)!r} has no rows.")
        elif self.get_items is None:
            raise CentaurError("DataBlock needs get_items (for example get_image_files) for a folder source.")
        else:
            items = list(self.get_items(source))
        if not items:
            raise CentaurError(f"no images found in {_name(source)!r}; expected files ending in .jpg, .jpeg, "
                               ".png, .bmp, .gif, .tif, .tiff or .webp (in subfolders is fine).")
        return items

    def _split(self, items):
        splitter = self.splitter or RandomSplitter(0.2, seed=0)
        train, valid = splitter(items)
        train, valid = list(train), list(valid)
        both = set(train) & set(valid)
        if both:  # a hand-written splitter that leaks: validation would flatter the model
            raise CentaurError(f"the splitter put {len(both)} item(s) in both training and validation (the first is "
                               f"{items[min(both)]!r}); each item must be on one side only.")
        if not train or not valid:
            raise CentaurError(f"the split left {len(train)} training and {len(valid)} validation items; "
                               "both need at least one. Add data or change the split.")
        return train, valid

    def _get_x(self, item, base):
        x = _call("get_x", self.get_x, item) if self.get_x else item
        if isinstance(x, str) and base is not None and not Path(x).is_absolute():
            x = base / x  # a CSV's relative paths are relative to the CSV, not to where we run
        return x

    def _get_y(self, item):
        return _call("get_y", self.get_y, item) if self.get_y else None

    def _blocks(self):
        blocks = tuple(self.blocks) if isinstance(self.blocks, (tuple, list)) else (self.blocks,)
        if len(blocks) != 2:
            raise CentaurError(f"blocks must be a pair (x block, y block), for example (ImageBlock, CategoryBlock) "
                               f"or (ImageBlock, None) for unlabelled images; got {self.blocks!r}.")
        return tuple(as_block(b) for b in blocks)

    def _check_blocks(self, x_block, y_block, items):
        if isinstance(x_block, ImageBlock) and isinstance(items[0], dict) and self.get_x is None:
            columns = list(items[0])
            likely = [c for c in columns if str(c).lower() in ("file", "fname", "filename", "path", "image")]
            hint = f"ColReader({(likely or ['file'])[0]!r})"
            raise CentaurError(f"the table's rows need get_x to say which column holds the image file, for "
                               f"example get_x={hint}; columns are {columns}.")
        if y_block is not None and self.get_y is None:
            raise CentaurError(f"the blocks include {type(y_block).__name__} but there is no get_y; say where "
                               "labels come from, for example get_y=parent_label or get_y=ColReader('label').")

    def datasets(self, source, cache_bytes=CACHE_BYTES):
        """Training and validation Datasets. Unreadable images are listed and skipped.

        >>> train_ds, valid_ds = dblock.datasets("data/emoji")  # doctest: +SKIP
        """
        self._check_recipe()
        x_block, y_block = self._blocks()
        items = self._items(source)
        self._check_blocks(x_block, y_block, items)
        base = _base(source)
        xs = [self._get_x(item, base) for item in items]
        ys = [self._get_y(item) for item in items]
        # before the split: a file listed twice would otherwise land on both sides of it
        items, xs, ys = _drop_duplicates(items, xs, ys, _name(source))
        train_idx, valid_idx = self._split(items)
        cache, tensors, bad = {}, {}, []
        if isinstance(x_block, ImageBlock):
            cache, tensors, bad = _load_all(x_block, xs, self.item_tfms, cache_bytes, set(valid_idx))
            if bad:
                listed = "\n  ".join(f"{x}: {reason}" for x, reason in bad[:20])
                more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
                warn(f"skipped {len(bad)} unreadable image(s); re-export or remove them "
                     f"(`centaur verify FOLDER` lists them all):\n  {listed}{more}")
            bad_set = {str(x) for x, _ in bad}
            keep = lambda i: str(xs[i]) not in bad_set
            train_idx, valid_idx = [i for i in train_idx if keep(i)], [i for i in valid_idx if keep(i)]
            if not train_idx and not valid_idx:
                raise CentaurError(f"none of the {len(items)} images in {_name(source)!r} could be read.")
            if not train_idx:
                raise CentaurError(f"none of the training images in {_name(source)!r} could be read.")
        encoded = {}
        if y_block is not None:
            train_idx, valid_idx = _drop_unlabelled(y_block, xs, ys, train_idx, valid_idx)
            _check_labels(y_block, ys, train_idx, valid_idx)
            y_block.setup([ys[i] for i in train_idx])
            valid_idx = _drop_unseen(y_block, ys, valid_idx)
            encoded = _encode_all(y_block, xs, ys, train_idx + valid_idx)
        if not valid_idx:
            raise CentaurError("no validation items are left; add data or change the split.")

        def make(idx, train):
            return Datasets([xs[i] for i in idx], [ys[i] for i in idx], x_block, y_block, self.item_tfms, train,
                            {j: cache[i] for j, i in enumerate(idx) if i in cache},
                            tensors={j: tensors[i] for j, i in enumerate(idx) if i in tensors},
                            encoded=[encoded[i] for i in idx] if y_block is not None else None)

        train_ds, valid_ds = make(train_idx, True), make(valid_idx, False)
        train_ds.source = valid_ds.source = _name(source)
        train_ds.skipped = valid_ds.skipped = bad
        return train_ds, valid_ds

    def dataloaders(self, source, bs=64, seed=None, num_workers=0, **kwargs):
        """DataLoaders for training (shuffled, augmented) and validation.

        seed fixes the shuffling order; without it the order follows torch's global seed
        (centaur.core.seed.set_seed).

        >>> dls = dblock.dataloaders("data/emoji", bs=32, seed=42)  # doctest: +SKIP
        """
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise CentaurError(f"batch size must be a positive integer, got {bs!r}.")
        train_ds, valid_ds = self.datasets(source, **kwargs)
        if bs > 1 and isinstance(train_ds.x_block, ImageBlock) and not self.item_tfms:
            # found now rather than at the first batch of training
            sizes = {img.size for ds in (train_ds, valid_ds) for img in ds.cache.values()}
            if len(sizes) > 1:
                shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
                raise CentaurError(f"the images have different sizes ({shown}, ...) and cannot be batched; "
                                   "add item_tfms=Resize(128) (or another size) to the DataBlock.")
        return DataLoaders(train_ds, valid_ds, bs=bs, batch_tfms=self.batch_tfms, seed=seed,
                           num_workers=num_workers, splitter=self.splitter)

    def summary(self, source, n=4):
        """Walk one item through every step, printing what each makes; name the step that fails.

        >>> dblock.summary("data/emoji")  # doctest: +SKIP
        get_items: 373 items; first: PosixPath('data/emoji/animal/baby_chick.png')
        ...
        """
        step = "get_items"
        try:
            items = self._items(source)
            print(f"get_items: {len(items)} items; first: {items[0]!r}")
            step = "blocks"
            x_block, y_block = self._blocks()
            self._check_blocks(x_block, y_block, items)
            step = "split"
            train_idx, valid_idx = self._split(items)
            print(f"split: {len(train_idx)} train, {len(valid_idx)} valid")
            item, base = items[train_idx[0]], _base(source)
            step = "get_x"
            x = self._get_x(item, base)
            print(f"get_x: {x!r}")
            step = "get_y"
            y = self._get_y(item)
            print(f"get_y: {y!r}")
            tensors, unreadable = [], []
            for i in train_idx:
                if len(tensors) >= max(1, n) or len(unreadable) >= 4 * max(1, n):
                    break
                step = "get_x"
                x = self._get_x(items[i], base)
                step = "open image" if isinstance(x_block, ImageBlock) else "load x"
                try:
                    img = x_block.load(x)
                except ImageError as e:  # dataloaders() lists and skips these; so do we, unless all fail
                    print(f"{step}: skipped {e}")
                    unreadable.append(e)
                    continue
                first = not tensors
                if first:
                    print(f"{step}: {img.size[0]}x{img.size[1]} {img.mode}")
                for tfm in self.item_tfms:
                    step = f"item transform {type(tfm).__name__}"
                    img = tfm(img, train=True)
                    if first:
                        print(f"{type(tfm).__name__}: {img.size[0]}x{img.size[1]}")
                step = "to tensor"
                tensors.append(x_block.to_tensor(img))
            if not tensors:
                raise unreadable[0]
            print(f"to tensor: {tuple(tensors[0].shape)} {tensors[0].dtype}")
            if y_block is not None:
                step = "encode y"
                y_block.setup([self._get_y(items[i]) for i in train_idx])
                print(f"encode y: {y!r} -> {y_block.encode(y)!r} (vocab: {y_block.vocab})")
            step = "collate"
            shapes = sorted({tuple(t.shape) for t in tensors})
            if len(shapes) > 1:
                raise CentaurError(f"the first {len(tensors)} items have different sizes {shapes}; "
                                   "add item_tfms=Resize(128) (or another size).")
            xb = torch.stack(tensors).float() / 255  # (n, 3, H, W)
            print(f"collate: {tuple(xb.shape)} {xb.dtype}")
            for tfm in self.batch_tfms:
                step = f"batch transform {type(tfm).__name__}"
                tfm.train()
                xb = tfm(xb)
                print(f"{type(tfm).__name__}: {tuple(xb.shape)}")
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


def _drop_duplicates(items, xs, ys, source):
    """items, xs, ys with each file once: a list (a CSV) naming one file twice would put copies of
    it on both sides of a random split, and the validation score would count images trained on.
    The same file with two different labels is a CentaurError (one image, one answer)."""
    first, keep, conflicts = {}, [], []
    for i, x in enumerate(xs):
        key = os.path.normcase(os.path.abspath(x)) if isinstance(x, (str, os.PathLike)) else None
        if key is None or key not in first:
            if key is not None:
                first[key] = i
            keep.append(i)
        elif repr(ys[first[key]]) != repr(ys[i]):
            conflicts.append((x, ys[first[key]], ys[i]))
    if conflicts:
        shown = "; ".join(f"{str(x)!r} as {a!r} and {b!r}" for x, a, b in conflicts[:3])
        raise CentaurError(f"{len(conflicts)} file(s) in {source!r} are listed with different labels: {shown}"
                           f"{' ...' if len(conflicts) > 3 else ''}. Keep one row per image, with its right label.")
    if len(keep) < len(xs):
        dropped = sorted(set(range(len(xs))) - set(keep))
        warn(f"{len(dropped)} row(s) of {source!r} list a file already listed with the same label, for example "
             f"{str(xs[dropped[0]])!r}; each file is used once, so no copy of it validates what trained.")
        return [items[i] for i in keep], [xs[i] for i in keep], [ys[i] for i in keep]
    return items, xs, ys


def _load_all(x_block, xs, item_tfms, cache_bytes, exact=()):
    """Decode every image once, in threads: bad ones are found now, good ones are cached.

    Items in `exact` (validation) are cached as their final tensors, made from the full
    image exactly as Predictor prepares one, so validation measures what serving will do.
    Training images are cached shrunk (_presize), as they are transformed again each epoch.
    """
    def load(i):
        try:
            img = x_block.load(xs[i])
            if i in exact:
                for tfm in item_tfms:
                    img = tfm(img, train=False)
                return i, x_block.to_tensor(img), None  # (3, H, W) uint8
            return i, _presize(img, item_tfms), None
        except Exception as e:  # ImageError or an OS error reading the file: list it, go on
            return i, None, getattr(e, "reason", None) or str(e)

    cache, tensors, bad, used = {}, {}, [], 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for i, img, err in pool.map(load, range(len(xs))):
            if err is not None:
                bad.append((xs[i], err))
            elif used < cache_bytes:
                if isinstance(img, torch.Tensor):
                    tensors[i] = img
                    used += img.numel()
                else:
                    cache[i] = img
                    used += img.width * img.height * 3
    return cache, tensors, bad


def _is_table(source):
    return isinstance(source, pd.DataFrame) or (
        isinstance(source, (str, Path)) and Path(source).suffix.lower() in (".csv", ".parquet", ".pq"))


def _name(source):
    if isinstance(source, pd.DataFrame):
        return "DataFrame"
    if isinstance(source, (list, tuple)):
        return f"a list of {len(source)} items"
    return str(source)


def _base(source):
    """The folder a table's relative file names are relative to: the table's own folder."""
    return Path(source).parent if isinstance(source, (str, Path)) and Path(source).is_file() else None


def _call(step, func, item):
    try:
        return func(item)
    except CentaurError:
        raise
    except Exception as e:
        raise CentaurError(f"{step} failed on {item!r} ({type(e).__name__}: {e}); DataBlock.summary(source) "
                           "walks one item through every step.") from e


def _drop_unlabelled(y_block, xs, ys, train_idx, valid_idx):
    """Leave out items with an empty label (a blank CSV cell), saying which, instead of a class 'nan'."""
    if y_block.kind == "multi_label":  # an empty cell is a valid answer: none of the labels
        return train_idx, valid_idx
    empty = [i for i in train_idx + valid_idx if is_missing(ys[i])]
    if empty:
        shown = ", ".join(str(xs[i]) for i in empty[:5]) + (", ..." if len(empty) > 5 else "")
        warn(f"{len(empty)} item(s) have no label and are left out: {shown}")
        empty = set(empty)
        train_idx, valid_idx = [i for i in train_idx if i not in empty], [i for i in valid_idx if i not in empty]
        if not train_idx:
            raise CentaurError("no training item has a label; fill in the label column.")
    return train_idx, valid_idx


def _recipe_part(part):
    """A block, getter, splitter or transform as it is written in a recipe: 'CategoryBlock',
    'parent_label', 'RandomSplitter(valid_pct=0.2, seed=42)', 'Resize(size=(128, 128), method='crop')'."""
    import inspect
    if part is None or isinstance(part, (str, int, float)):
        return repr(part)
    if isinstance(part, type) or inspect.isroutine(part):
        return getattr(part, "__name__", repr(part))
    if type(part).__repr__ is not object.__repr__:  # it says itself (BatchAugment(...), a partial)
        return repr(part)
    # an object without a repr of its own: the constructor's arguments it keeps under their own names
    try:
        params = inspect.signature(type(part)).parameters
    except (TypeError, ValueError):
        params = {}
    kept = vars(part) if hasattr(part, "__dict__") else {}
    args = ", ".join(f"{k}={kept[k]!r}" for k in params if k in kept)
    return f"{type(part).__name__}({args})"


def _check_labels(y_block, ys, train_idx, valid_idx):
    """A classifier needs two classes; a class with a single image is worth a warning."""
    if y_block.kind != "single_label":
        return
    counts = pd.Series([str(ys[i]) for i in train_idx + valid_idx]).value_counts()
    if len(counts) < 2:
        raise CentaurError(f"found only one class ({counts.index[0]!r}); a classifier needs at least two. "
                           "Put each class's images in its own subfolder.")
    few = sorted(counts[counts < 2].index)
    if few:
        warn(f"classes with a single image: {few}; the model can hardly learn them, and the image is "
             "either trained on or validated, never both. Add more images of these classes.")
    train_classes = {str(ys[i]) for i in train_idx}
    if len(train_classes) < 2:
        raise CentaurError(f"the training split has only one class ({train_classes.pop()!r}) although the data "
                           f"has {len(counts)}; add images or change the split.")


def _drop_unseen(y_block, ys, valid_idx):
    """Validation items whose labels never occur in training cannot be scored: leave them out, loudly."""
    if y_block.vocab is None:
        return valid_idx
    vocab = set(y_block.vocab)
    if y_block.kind == "multi_label":
        labels = {i: {str(l) for l in y_block._split(ys[i])} for i in valid_idx}
    else:
        labels = {i: {str(ys[i])} for i in valid_idx}
    unseen = [i for i in valid_idx if not labels[i] <= vocab]
    if unseen:
        names = sorted(set().union(*(labels[i] for i in unseen)) - vocab)
        warn(f"{len(unseen)} validation item(s) have labels with no training example and are left out: {names}")
        unseen = set(unseen)
        valid_idx = [i for i in valid_idx if i not in unseen]
    return valid_idx


def _encode_all(y_block, xs, ys, idx):
    """Encode every label now, so a bad one stops us before training rather than mid-epoch."""
    encoded, bad = {}, []
    for i in idx:
        try:
            encoded[i] = y_block.encode(ys[i])
        except CentaurError as e:
            bad.append((i, e))
    if bad:
        i, e = bad[0]
        raise CentaurError(f"{len(bad)} item(s) have labels that cannot be used; the first is {str(xs[i])!r}: {e}")
    return encoded
