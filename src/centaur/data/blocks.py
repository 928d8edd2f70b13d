"""Blocks: what kind of thing x and y are, how to encode them as tensors and back."""
import numpy as np
import torch
from torch import nn

from ..core.errors import CentaurError
from ..core.images import MAX_PIXELS, open_image


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


class CategoryBlock:
    """One label per item; the vocabulary is learned from the training labels."""

    kind = "single_label"

    def __init__(self, vocab=None):
        self.vocab = list(vocab) if vocab is not None else None

    def setup(self, labels):
        if self.vocab is None:
            self.vocab = sorted({str(l) for l in labels})
        self._index = {v: i for i, v in enumerate(self.vocab)}

    def encode(self, label):
        try:
            return torch.tensor(self._index[str(label)])
        except KeyError:
            raise CentaurError(f"label {label!r} is not among the training labels {self.vocab}; every "
                               "validation label needs training examples.") from None

    def decode(self, idx):
        return self.vocab[int(idx)]

    @property
    def num_outputs(self):
        return len(self.vocab)

    def loss_func(self):
        return nn.CrossEntropyLoss()


class MultiCategoryBlock(CategoryBlock):
    """Any number of labels per item (a list, or a string split by label_delim)."""

    kind = "multi_label"

    def __init__(self, vocab=None, label_delim=" "):
        super().__init__(vocab)
        self.label_delim = label_delim

    def _split(self, labels):
        if isinstance(labels, str):
            return [l for l in labels.split(self.label_delim) if l]
        return list(labels)

    def setup(self, labels):
        if self.vocab is None:
            self.vocab = sorted({str(l) for ls in labels for l in self._split(ls)})
        self._index = {v: i for i, v in enumerate(self.vocab)}

    def encode(self, labels):
        y = torch.zeros(len(self.vocab))
        for l in self._split(labels):
            y[super().encode(l)] = 1.0
        return y

    def decode(self, y, threshold=0.5):
        return [v for v, p in zip(self.vocab, y) if p >= threshold]

    def loss_func(self):
        return nn.BCEWithLogitsLoss()


class RegressionBlock:
    """A number (or n_out numbers) per item."""

    kind = "regression"

    def __init__(self, n_out=1):
        self.n_out, self.vocab = n_out, None

    def setup(self, labels):
        pass

    def encode(self, value):
        try:
            return torch.tensor(value, dtype=torch.float32).reshape(self.n_out)
        except (TypeError, ValueError, RuntimeError):
            raise CentaurError(f"regression target {value!r} is not a number.") from None

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
