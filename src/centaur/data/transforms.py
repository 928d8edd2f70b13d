"""Item transforms: make every image the same size, one PIL image at a time.

Each transform is called as tfm(img, train) so it can be random while training and
deterministic for validation and prediction (a centre crop instead of a random one).
"""
import math
import random

from PIL import Image, ImageOps

from ..core.errors import check_choice

RESIZE_METHODS = ("crop", "pad", "squish")


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


class Resize:
    """Resize to `size` by cropping (random crop while training), padding or squishing.

    pad uses reflection of the image, not black bars, so the network sees no artificial edges.

    >>> Resize(128, "pad")(Image.new("RGB", (300, 100)), train=False).size
    (128, 128)
    """

    def __init__(self, size, method="crop"):
        self.size, self.method = _pair(size), check_choice("resize method", method, RESIZE_METHODS)
        self.random = method == "crop"

    def __call__(self, img, train=False):
        w, h = self.size
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
        self.size, self.min_scale, self.ratio = _pair(size), min_scale, ratio
        self.random = True

    def __call__(self, img, train=False):
        w, h = self.size
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
        return Resize((w, h), "crop")(img, train=False)

    def to_dict(self):
        return dict(name="RandomResizedCrop", size=list(self.size), min_scale=self.min_scale)


def _reflect_pad(img, w, h):
    """Place img in the centre of a w x h canvas, filling the border by reflection."""
    pad_w, pad_h = w - img.width, h - img.height
    if pad_w <= 0 and pad_h <= 0:
        return img
    import numpy as np
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
    """Rebuild an item transform from its to_dict() form (as stored in model.json)."""
    if d["name"] == "Resize":
        return Resize(tuple(d["size"]), d["method"])
    if d["name"] == "RandomResizedCrop":
        return RandomResizedCrop(tuple(d["size"]), d.get("min_scale", 0.35))
    raise ValueError(f"unknown item transform {d['name']!r}")
