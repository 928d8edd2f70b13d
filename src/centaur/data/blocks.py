"""Blocks: what kind of thing x and y are, how to encode them as tensors and back."""
import numbers
import re

import numpy as np
import torch
from torch import nn

from ..core.errors import CentaurError, did_you_mean
from ..core.images import MAX_PIXELS, open_image
from .getters import is_missing


class ImageBlock:
    """An image file: opened safely (EXIF orientation, any mode to RGB, pixel limit)."""

    kind = "image"

    def __init__(self, max_pixels=MAX_PIXELS):
        self.max_pixels = max_pixels

    def load(self, source):
        return open_image(source, max_pixels=self.max_pixels)

    @staticmethod
    def to_tensor(img):  # PIL (H, W, 3) -> uint8 (3, H, W)
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


class TensorImageBlock:
    """An image already decoded into a uint8 (3, H, W) tensor (a dataset held in memory, or
    images made by code): nothing to open, nothing to convert.

    >>> TensorImageBlock.to_tensor(TensorImageBlock().load(torch.zeros(3, 8, 8, dtype=torch.uint8))).shape
    torch.Size([3, 8, 8])
    """

    kind = "tensor"

    def load(self, x):
        return x

    @staticmethod
    def to_tensor(x):
        return x


def _natural_key(text):
    # "class2" < "class10": digit runs compare as numbers (re.split puts them at odd positions)
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]


def _sorted_names(labels):
    """Distinct labels as strings in natural order: 2 before 10, whether numbers or folder names."""
    distinct = {str(l): l for l in labels}
    values = list(distinct.values())
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return [str(v) for v in sorted(values)]
    return sorted(distinct, key=_natural_key)


class CategoryBlock:
    """One label per item; the vocabulary is learned from the training labels.

    >>> block = CategoryBlock(); block.setup(["dog", "cat", "dog"])
    >>> block.vocab, block.decode(block.encode("dog"))
    (['cat', 'dog'], 'dog')
    """

    kind = "single_label"

    def __init__(self, vocab=None):
        self.vocab = [str(v) for v in vocab] if vocab is not None else None
        if self.vocab is not None:
            self._index = {v: i for i, v in enumerate(self.vocab)}

    def setup(self, labels):
        if self.vocab is None:
            self.vocab = _sorted_names(labels)
        self._index = {v: i for i, v in enumerate(self.vocab)}

    def _check_setup(self):
        if self.vocab is None:
            raise CentaurError("this block has no vocabulary yet; call setup(labels) or give vocab=[...].")

    def encode(self, label):
        self._check_setup()
        try:
            return torch.tensor(self._index[str(label)])
        except KeyError:
            raise CentaurError(f"label {label!r} is not among the training labels {self.vocab}; every "
                               "label needs training examples." + did_you_mean(label, self.vocab)) from None

    def decode(self, idx):
        self._check_setup()
        return self.vocab[int(idx)]

    @property
    def num_outputs(self):
        return len(self.vocab)

    def loss_func(self):
        return nn.CrossEntropyLoss()


class MultiCategoryBlock(CategoryBlock):
    """Any number of labels per item (a list, or a string split by label_delim); y is multi-hot.

    >>> block = MultiCategoryBlock(); block.setup(["cat dog", "dog"])
    >>> block.encode("dog cat")
    tensor([1., 1.])
    """

    kind = "multi_label"

    def __init__(self, vocab=None, label_delim=" "):
        super().__init__(vocab)
        self.label_delim = label_delim

    def _split(self, labels):
        if is_missing(labels):  # an empty cell: an item with none of the labels
            return []
        if isinstance(labels, str):
            return [l.strip() for l in labels.split(self.label_delim) if l.strip()]
        if isinstance(labels, (list, tuple, set, frozenset)):
            return [str(l) for l in labels]
        return [str(labels)]

    def setup(self, labels):
        if self.vocab is None:
            self.vocab = _sorted_names(l for ls in labels for l in self._split(ls))
        self._index = {v: i for i, v in enumerate(self.vocab)}

    def encode(self, labels):
        self._check_setup()
        y = torch.zeros(len(self.vocab))  # (num_classes,) multi-hot
        for l in self._split(labels):
            y[super().encode(l)] = 1.0
        return y

    def decode(self, y, threshold=0.5):
        return [v for v, p in zip(self.vocab, y) if p >= threshold]

    def loss_func(self):
        return nn.BCEWithLogitsLoss()


class RegressionBlock:
    """A number (or n_out numbers) per item; numbers written as text ("3.5") are read too.

    >>> RegressionBlock().encode("3.5")
    tensor([3.5000])
    """

    kind = "regression"

    def __init__(self, n_out=1):
        self.n_out, self.vocab = n_out, None

    def setup(self, labels):
        pass

    def encode(self, value):
        try:
            if isinstance(value, str):
                value = float(value)
            y = torch.as_tensor(value, dtype=torch.float32).reshape(self.n_out).clone()
        except (TypeError, ValueError, RuntimeError):
            raise CentaurError(f"regression target {value!r} is not {self._expected()}.") from None
        if not torch.isfinite(y).all():  # a NaN target makes the loss NaN for the whole batch
            raise CentaurError(f"regression target {value!r} is missing or infinite; fill or drop it.")
        return y

    def _expected(self):
        return "a number" if self.n_out == 1 else f"{self.n_out} numbers"

    def decode(self, y):
        return y.tolist()

    @property
    def num_outputs(self):
        return self.n_out

    def loss_func(self):
        return nn.MSELoss()


def as_block(block):
    """Accept a block class (ImageBlock) or an instance (CategoryBlock(vocab=...))."""
    return block() if isinstance(block, type) else block
