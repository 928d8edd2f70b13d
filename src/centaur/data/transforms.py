"""Item transforms: make every image the same size, one PIL image at a time.

Each transform is called as tfm(img, train) so it can be random while training and
deterministic for validation and prediction (a centre crop instead of a random one).
"""
import math
import random

import numpy as np
from PIL import Image

from ..core.errors import CentaurError, check_choice, did_you_mean

RESIZE_METHODS = ("crop", "pad", "squish")


def _pair(size):
    """An int or (height, width), the order torch and BatchAugment use, -> (height, width)."""
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise CentaurError(f"size must be a positive int or (height, width), got {size!r}.")
    return pair


class Resize:
    """Resize to `size` (an int, or (height, width)) by cropping, padding or squishing.

    crop keeps the middle for validation and a random window while training; pad uses
    reflection of the image, not black bars, so the network sees no artificial edges.

    >>> Resize(128, "pad")(Image.new("RGB", (300, 100)), train=False).size
    (128, 128)
    """

    def __init__(self, size, method="crop"):
        self.size, self.method = _pair(size), check_choice("resize method", method, RESIZE_METHODS)
        self.random = method == "crop"

    def __call__(self, img, train=False):
        h, w = self.size
        if self.method == "squish":
            return img.resize((w, h), Image.BILINEAR)
        if self.method == "pad":
            scale = min(w / img.width, h / img.height)
            inner = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
            return _reflect_pad(inner, w, h)
        scale = max(w / img.width, h / img.height)
        cw, ch = w / scale, h / scale  # the crop box in source pixels
        fx, fy = (random.random(), random.random()) if train else (0.5, 0.5)
        left, top = (img.width - cw) * fx, (img.height - ch) * fy
        return img.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch))

    def to_dict(self):
        return dict(name="Resize", size=list(self.size), method=self.method)


class RandomResizedCrop:
    """A random crop of random area and aspect ratio, resized to `size` (Inception-style).

    Validation takes the centre crop at the target aspect ratio.
    """

    def __init__(self, size, min_scale=0.35, ratio=(3 / 4, 4 / 3)):
        number = isinstance(min_scale, (int, float)) and not isinstance(min_scale, bool)
        if not number or not 0 < min_scale <= 1:
            raise CentaurError(f"min_scale must be a fraction of the area in (0, 1], got {min_scale!r}.")
        ratio = tuple(ratio) if isinstance(ratio, (tuple, list)) else ()
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise CentaurError(f"ratio must be (low, high) aspect ratios with 0 < low <= high, got {ratio!r}.")
        self.size, self.min_scale, self.ratio = _pair(size), min_scale, ratio
        self.random = True

    def __call__(self, img, train=False):
        h, w = self.size
        if train:
            area = img.width * img.height
            for _ in range(10):
                target = random.uniform(self.min_scale, 1.0) * area
                log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
                aspect = math.exp(random.uniform(*log_r))
                cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
                if cw <= img.width and ch <= img.height:
                    left, top = random.uniform(0, img.width - cw), random.uniform(0, img.height - ch)
                    return img.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        return Resize((h, w), "crop")(img, train=False)

    def to_dict(self):
        return dict(name="RandomResizedCrop", size=list(self.size), min_scale=self.min_scale, ratio=list(self.ratio))


def _reflect_pad(img, w, h):
    """Place img in the centre of a w x h canvas, filling the border by reflection."""
    pad_w, pad_h = w - img.width, h - img.height
    if pad_w <= 0 and pad_h <= 0:
        return img
    a = np.asarray(img)
    left, top = pad_w // 2, pad_h // 2
    pads = ((top, pad_h - top), (left, pad_w - left)) + ((0, 0),) * (a.ndim - 2)
    mode = "reflect" if min(a.shape[:2]) > 1 else "edge"
    # numpy reflects only once per call; repeat while the pad is wider than the image
    while any(p > s - 1 for (p0, p1), s in zip(pads[:2], a.shape[:2]) for p in (p0, p1)) and mode == "reflect":
        step = tuple((min(p0, s - 1), min(p1, s - 1)) for (p0, p1), s in zip(pads[:2], a.shape[:2]))
        a = np.pad(a, step + pads[2:], mode="reflect")
        pads = tuple((p0 - s0, p1 - s1) for (p0, p1), (s0, s1) in zip(pads[:2], step)) + pads[2:]
    a = np.pad(a, pads, mode=mode)
    return Image.fromarray(a)


def transform_from_dict(d):
    """Rebuild an item transform from its to_dict() form (as stored in model.json).

    >>> transform_from_dict(Resize(128, "pad").to_dict()).method
    'pad'
    """
    name = d.get("name") if isinstance(d, dict) else None
    if name == "Resize":
        return Resize(tuple(d["size"]), d.get("method", "crop"))
    if name == "RandomResizedCrop":
        return RandomResizedCrop(tuple(d["size"]), d.get("min_scale", 0.35), tuple(d.get("ratio", (3 / 4, 4 / 3))))
    known = ["Resize", "RandomResizedCrop"]
    raise CentaurError(f"unknown item transform {name!r} in the model's preprocessing; expected one of "
                       f"{known}.{did_you_mean(name, known)} Was the model saved by a newer centaur?")
