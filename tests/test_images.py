"""Tests for centaur.core.images: every mode becomes sensible RGB, every bad file a clear ImageError."""
import io
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from centaur.core.errors import CentaurError
from centaur.core.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageError,
    is_image_file,
    open_image,
    verify_images,
)


def save(img, path, **kwargs):
    img.save(path, **kwargs)
    return path


def pixel(img, xy=(0, 0)):
    assert img.mode == "RGB"
    return img.getpixel(xy)


def near(actual, expected, tol=2):
    return all(abs(a - e) <= tol for a, e in zip(actual, expected))


def expect_error(path_or_bytes, fragment, name=None, **kwargs):
    """open_image must raise ImageError (a ValueError) naming the file and the reason."""
    with pytest.raises(ImageError) as info:
        open_image(path_or_bytes, **kwargs)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, CentaurError)
    message = str(error)
    assert (name or str(path_or_bytes)) in message
    assert fragment in message
    return error


# --- constants and suffixes -----------------------------------------------------------------

def test_constants():
    assert MAX_PIXELS == 40_000_000
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
    assert all(ext == ext.lower() for ext in IMAGE_EXTENSIONS)


@pytest.mark.parametrize(
    "name, expected",
    [("a.jpg", True), ("b.JPEG", True), ("dir/c.Png", True), ("d.webp", True), ("e.tif", True),
     ("f.txt", False), ("g", False), ("h.jpg.zip", False), ("._i.jpg", False)],
)
def test_is_image_file(name, expected):
    assert is_image_file(name) is expected


# --- mode conversion ------------------------------------------------------------------------

def test_rgb_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    path = save(Image.fromarray(array), tmp_path / "rgb.png")
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (5, 6)
    np.testing.assert_array_equal(np.asarray(img), array)


def test_grayscale_l(tmp_path):
    path = save(Image.new("L", (4, 3), 77), tmp_path / "gray.png")
    assert pixel(open_image(path)) == (77, 77, 77)


def test_bilevel_1(tmp_path):
    img = Image.new("1", (4, 4), 0)
    img.putpixel((1, 1), 1)
    path = save(img, tmp_path / "bits.png")
    out = open_image(path)
    assert pixel(out) == (0, 0, 0) and pixel(out, (1, 1)) == (255, 255, 255)


def test_la_transparent_is_white(tmp_path):
    img = Image.new("LA", (3, 3), (0, 0))         # black, fully transparent
    img.putpixel((1, 1), (50, 255))               # opaque dark grey
    path = save(img, tmp_path / "la.png")
    out = open_image(path)
    assert pixel(out) == (255, 255, 255)
    assert pixel(out, (1, 1)) == (50, 50, 50)


def test_rgba_transparent_is_white_and_half_alpha_blends(tmp_path):
    img = Image.new("RGBA", (3, 1), (0, 0, 0, 0))  # black under full transparency
    img.putpixel((1, 0), (255, 0, 0, 255))         # opaque red
    img.putpixel((2, 0), (0, 0, 255, 128))         # half-transparent blue
    path = save(img, tmp_path / "emoji.png")
    out = open_image(path)
    assert pixel(out, (0, 0)) == (255, 255, 255)
    assert pixel(out, (1, 0)) == (255, 0, 0)
    assert near(pixel(out, (2, 0)), (127, 127, 255))


def test_palette_without_transparency(tmp_path):
    img = Image.new("P", (2, 2))
    img.putpalette([10, 20, 30] + [200, 100, 0] * 255)
    img.putpixel((1, 1), 1)
    path = save(img, tmp_path / "pal.png")
    out = open_image(path)
    assert pixel(out) == (10, 20, 30) and pixel(out, (1, 1)) == (200, 100, 0)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_is_white(tmp_path, suffix):
    img = Image.new("P", (2, 2), 0)
    img.putpalette([0, 0, 0] + [0, 200, 0] + [0, 0, 0] * 254)
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0                     # index 0 (black) is transparent
    path = save(img, tmp_path / f"pal_t{suffix}", transparency=0)
    out = open_image(path)
    assert pixel(out) == (255, 255, 255)
    assert pixel(out, (1, 1)) == (0, 200, 0)


def test_rgb_with_trns_colour_is_white(tmp_path):
    img = Image.new("RGB", (2, 1), (1, 2, 3))
    img.putpixel((1, 0), (9, 9, 9))
    path = save(img, tmp_path / "trns.png", transparency=(1, 2, 3))
    out = open_image(path)
    assert pixel(out) == (255, 255, 255) and pixel(out, (1, 0)) == (9, 9, 9)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_pure_cyan(tmp_path, suffix):
    path = save(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), tmp_path / f"cyan{suffix}")
    assert Image.open(path).mode == "CMYK"
    assert near(pixel(open_image(path)), (0, 255, 255), tol=6)


@pytest.mark.parametrize("value, expected", [(65535, 255), (32768, 128), (0, 0), (256, 1)])
def test_16bit_png_scaled_not_clipped(tmp_path, value, expected):
    path = save(Image.fromarray(np.full((3, 4), value, np.uint16)), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    assert pixel(open_image(path)) == (expected,) * 3


def test_16bit_gradient_keeps_its_detail(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, size=(5, 7), dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "grad.tif")
    out = np.asarray(open_image(path))
    np.testing.assert_array_equal(out[..., 0], values >> 8)


def test_16bit_big_endian_tiff(tmp_path):
    values = np.array([[65535, 32768, 0]], dtype=">u2")
    img = Image.frombytes("I;16B", (3, 1), values.tobytes())
    path = save(img, tmp_path / "big.tif")
    assert Image.open(path).mode == "I;16B"
    out = open_image(path)
    assert [pixel(out, (x, 0))[0] for x in range(3)] == [255, 128, 0]


def test_32bit_int_tiff(tmp_path):
    # Mode I holding 16-bit values (its usual origin) maps 65535 to white.
    path = save(Image.fromarray(np.array([[0, 32768, 65535]], np.int32)), tmp_path / "int.tif")
    assert Image.open(path).mode == "I"
    out = open_image(path)
    assert [pixel(out, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_32bit_int_outside_16bit_range_is_stretched(tmp_path):
    values = np.array([[-1000, 0, 1_000_000]], np.int32)
    path = save(Image.fromarray(values), tmp_path / "wide.tif")
    out = open_image(path)
    assert pixel(out, (0, 0))[0] == 0 and pixel(out, (2, 0))[0] == 255


@pytest.mark.parametrize(
    "values, expected",
    [([0.0, 0.5, 1.0], [0, 128, 255]),              # unit floats
     ([0.0, 100.0, 255.0], [0, 100, 255]),          # 8-bit range floats
     ([-1.0, np.nan, 1.0], [0, 0, 255])],           # other ranges stretched, NaN darkest
)
def test_float_tiff(tmp_path, values, expected):
    path = save(Image.fromarray(np.array([values], np.float32)), tmp_path / "float.tif")
    assert Image.open(path).mode == "F"
    out = open_image(path)
    assert [pixel(out, (x, 0))[0] for x in range(3)] == expected


def test_multi_frame_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=10)
    assert Image.open(path).n_frames == 2
    out = open_image(path)
    assert out.mode == "RGB" and near(pixel(out), (255, 0, 0), tol=4)


def test_multi_frame_tiff_gives_first_frame(tmp_path):
    frames = [Image.new("L", (4, 4), value) for value in (30, 220)]
    path = tmp_path / "stack.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 2
    assert pixel(open_image(path)) == (30, 30, 30)


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (10, 0, 20, 10))        # left half red, right half blue
    exif = img.getexif()
    exif[0x0112] = 6                                # Orientation: rotate 90 degrees clockwise
    path = save(img, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    assert Image.open(path).size == (20, 10)
    out = open_image(path)
    assert out.size == (10, 20)
    # Turned clockwise, the left (red) half ends on top and the right (blue) half at the bottom.
    assert near(pixel(out, (5, 2)), (255, 0, 0), tol=30)
    assert near(pixel(out, (5, 17)), (0, 0, 255), tol=30)


def test_bytes_input(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGBA", (3, 2), (0, 128, 0, 255)).save(buffer, "PNG")
    out = open_image(buffer.getvalue())
    assert out.size == (3, 2) and pixel(out) == (0, 128, 0)
    assert pixel(open_image(bytearray(buffer.getvalue()))) == (0, 128, 0)


def test_result_is_independent_of_the_file(tmp_path):
    path = save(Image.new("RGB", (2, 2), (1, 2, 3)), tmp_path / "x.png")
    out = open_image(path)
    path.unlink()                                     # the file handle was closed
    assert pixel(out) == (1, 2, 3)


# --- bad files --------------------------------------------------------------------------------

def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    expect_error(path, "empty file")


def test_zero_bytes_upload_uses_its_name():
    expect_error(b"", "empty file", name="<uploaded bytes>")  # the default label
    with pytest.raises(ImageError, match="photo.png"):
        open_image(b"", name="photo.png")


def test_missing_file_and_folder(tmp_path):
    expect_error(tmp_path / "nope.png", "no such file")
    expect_error(tmp_path, "folder")


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path, fmt, suffix):
    rng = np.random.default_rng(2)
    noise = Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    whole = tmp_path / f"whole{suffix}"
    noise.save(whole, fmt)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    expect_error(cut, "truncated or corrupt")


def test_random_bytes_with_jpg_suffix(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    expect_error(path, "not an image Pillow can read")


def test_text_file_with_png_suffix(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture\n")
    expect_error(path, "not an image Pillow can read")


def test_random_bytes_upload():
    expect_error(b"hello, not an image", "not an image Pillow can read", name="<uploaded bytes>")


def test_bomb_refused_from_header_before_decoding(tmp_path, monkeypatch):
    path = save(Image.new("1", (3000, 3000)), tmp_path / "bomb.png")  # ~1 KB on disk
    assert path.stat().st_size < 10_000

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    error = expect_error(path, "9,000,000 pixels", max_pixels=1_000_000)
    assert "1,000,000" in str(error) and "3000x3000" in str(error)
    assert "max_pixels" in str(error)                # says how to allow it


def test_bomb_limit_can_be_raised(tmp_path):
    path = save(Image.new("1", (3000, 3000)), tmp_path / "big.png")
    assert open_image(path, max_pixels=10_000_000).size == (3000, 3000)


def test_pillow_bomb_error_becomes_image_error(tmp_path, monkeypatch):
    path = save(Image.new("L", (100, 100)), tmp_path / "pil_bomb.png")
    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 > 2 x 1000: Pillow refuses
    expect_error(path, "too many pixels for Pillow", max_pixels=10**9)
    assert before != 1000


def test_pillow_bomb_warning_does_not_leak_or_override_our_limit(tmp_path, monkeypatch):
    path = save(Image.new("L", (40, 40)), tmp_path / "warn.png")    # 1600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)            # warning zone: 1000..2000
    filters_before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(path, max_pixels=10_000).size == (40, 40)
    assert warnings.filters == filters_before
    expect_error(path, "1,600 pixels", max_pixels=1000)


def test_image_error_pickles():
    error = ImageError("a.png", "truncated or corrupt")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, ImageError) and str(again) == str(error) and again.reason == error.reason


def test_image_error_sends_the_user_to_the_verify_command():
    assert "centaur verify FOLDER" in str(ImageError("a.png", "truncated or corrupt"))


def test_wrong_source_type():
    with pytest.raises(TypeError, match="path"):
        open_image(12345)


# --- verify_images --------------------------------------------------------------------------

def test_verify_images_splits_good_and_bad(tmp_path):
    good_png = save(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), tmp_path / "ok.png")
    good_jpg = save(Image.new("RGB", (4, 4), (9, 9, 9)), tmp_path / "ok.jpg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    big = save(Image.new("1", (2000, 1000)), tmp_path / "big.png")
    whole = save(Image.fromarray(np.random.default_rng(4).integers(0, 256, (32, 32, 3), np.uint8)),
                 tmp_path / "whole.jpg")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:300])
    missing = tmp_path / "missing.png"

    paths = [good_png, str(empty), text, good_jpg, big, cut, missing]
    good, bad = verify_images(paths, max_pixels=1_000_000)
    assert good == [good_png, good_jpg]
    reasons = dict(bad)
    assert list(reasons) == [empty, text, big, cut, missing]   # input order, all Paths
    assert "empty file" in reasons[empty]
    assert "not an image Pillow can read" in reasons[text]
    assert "2,000,000 pixels" in reasons[big]
    assert "truncated or corrupt" in reasons[cut]
    assert "no such file" in reasons[missing]


def test_verify_images_empty_input():
    assert verify_images([]) == ([], [])


# --- edge cases -----------------------------------------------------------------------------

def test_16bit_png_with_transparent_value_is_white(tmp_path):
    img = Image.fromarray(np.array([[5, 32768]], np.uint16))
    path = save(img, tmp_path / "deep_trns.png", transparency=5)
    out = open_image(path)
    assert pixel(out, (0, 0)) == (255, 255, 255) and pixel(out, (1, 0)) == (128, 128, 128)


def test_constant_negative_int_image_does_not_divide_by_zero(tmp_path):
    path = save(Image.fromarray(np.full((2, 2), -5, np.int32)), tmp_path / "flat.tif")
    assert pixel(open_image(path)) == (0, 0, 0)


def test_threads_leave_warning_filters_as_they_were(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = save(Image.new("RGB", (8, 8), (1, 2, 3)), tmp_path / "t.png")
    filters_before = list(warnings.filters)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: pixel(open_image(path)), range(64)))
    assert results == [(1, 2, 3)] * 64
    assert warnings.filters == filters_before
