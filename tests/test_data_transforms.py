"""Tests for centaur.data.transforms: item transforms make every image the requested size."""
import json
import random

import numpy as np
import pytest
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.data.transforms import RandomResizedCrop, Resize, transform_from_dict

SHAPES = {"wide": (60, 20), "tall": (20, 60), "small": (5, 3), "square": (30, 30), "one_pixel": (1, 1),
          "one_column": (1, 40)}


def noise(size, low=0, high=256, seed=0):
    """A random RGB image; size is PIL's (width, height)."""
    w, h = size
    return Image.fromarray(np.random.default_rng(seed).integers(low, high, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("method", ["crop", "pad", "squish"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("train", [False, True])
def test_resize_exact_size(method, shape, train):
    img = noise(SHAPES[shape])
    out = Resize(16, method)(img, train=train)
    assert out.size == (16, 16) and out.mode == "RGB"
    # a tuple is (height, width), as in torch and BatchAugment; PIL reports (width, height)
    assert Resize((12, 20), method)(img, train=train).size == (20, 12)


def test_resize_pad_reflects_instead_of_black():
    white = Image.new("RGB", (60, 10), (255, 255, 255))
    out = np.asarray(Resize(32, "pad")(white))
    assert out.min() == 255  # no black bars
    # on noise in [100, 200] no pixel of the padding falls outside the picture's range
    out = np.asarray(Resize((40, 24), "pad")(noise((50, 12), 100, 201)))
    assert out.shape == (40, 24, 3) and out.min() >= 100 and out.max() <= 200


def test_resize_pad_keeps_the_picture_in_the_middle():
    img = noise((32, 16), seed=1)  # already the right width: only rows are added
    out = np.asarray(Resize(32, "pad")(img))
    np.testing.assert_array_equal(out[8:24], np.asarray(img))  # centred, untouched
    np.testing.assert_array_equal(out[7], np.asarray(img)[1])  # the row above mirrors the second row


def test_resize_crop_is_centred_for_validation():
    img = noise((40, 20), seed=2)
    a = np.asarray(img)
    out = np.asarray(Resize(20, "crop")(img, train=False))
    np.testing.assert_array_equal(out, a[:, 10:30])
    tall = noise((20, 40), seed=3)
    np.testing.assert_array_equal(np.asarray(Resize(20)(tall)), np.asarray(tall)[10:30])


def test_resize_crop_is_random_in_training():
    img = noise((40, 20), seed=4)
    a = np.asarray(img)
    random.seed(0)
    offsets = set()
    for _ in range(20):
        out = np.asarray(Resize(20, "crop")(img, train=True))
        # bilinear at a fractional offset mixes neighbours: find the nearest whole-pixel window
        errors = [np.abs(out.astype(int) - a[:, x:x + 20]).mean() for x in range(21)]
        offsets.add(int(np.argmin(errors)))
    assert len(offsets) >= 5
    assert Resize(16, "crop").random and not Resize(16, "pad").random and not Resize(16, "squish").random


def test_random_resized_crop():
    img = noise((50, 30), seed=5)
    random.seed(1)
    rrc = RandomResizedCrop((24, 16), min_scale=0.5)
    outs = [rrc(img, train=True) for _ in range(5)]
    assert all(o.size == (16, 24) for o in outs)
    assert len({o.tobytes() for o in outs}) > 1  # random while training
    valid = rrc(img, train=False)  # validation: the centre crop, same every time
    assert valid.size == (16, 24) and valid.tobytes() == rrc(img, train=False).tobytes()
    assert valid.tobytes() == Resize((24, 16), "crop")(img, train=False).tobytes()
    assert RandomResizedCrop(8)(Image.new("RGB", (2, 3)), train=True).size == (8, 8)  # tiny source


@pytest.mark.parametrize("tfm", [Resize(20, "pad"), Resize((12, 20), "squish"), Resize(16),
                                 RandomResizedCrop(16, min_scale=0.2, ratio=(0.5, 2.0))])
def test_to_dict_roundtrip(tfm):
    d = json.loads(json.dumps(tfm.to_dict()))  # as stored in model.json
    again = transform_from_dict(d)
    assert type(again) is type(tfm) and again.to_dict() == tfm.to_dict()
    img = noise((33, 21), seed=6)
    assert again(img, train=False).tobytes() == tfm(img, train=False).tobytes()


def test_transform_from_dict_unknown():
    with pytest.raises(CentaurError, match="unknown item transform 'Resise'.*Did you mean: 'Resize'"):
        transform_from_dict({"name": "Resise", "size": [8, 8]})
    with pytest.raises(CentaurError, match="unknown item transform"):
        transform_from_dict({"size": [8, 8]})


@pytest.mark.parametrize("size", [0, -3, "128", (8,), (8, 0), 12.5, None, True])
def test_bad_sizes(size):
    with pytest.raises(CentaurError, match="size must be a positive int"):
        Resize(size)
    with pytest.raises(CentaurError, match="size must be a positive int"):
        RandomResizedCrop(size)


def test_bad_options():
    with pytest.raises(CentaurError, match="Did you mean: 'crop'"):
        Resize(16, "crp")
    with pytest.raises(CentaurError, match="min_scale"):
        RandomResizedCrop(16, min_scale=0)
    with pytest.raises(CentaurError, match="ratio"):
        RandomResizedCrop(16, ratio=(2, 1))
