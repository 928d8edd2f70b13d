"""Safe image opening: every file a user gives us becomes an RGB picture or a clear ImageError."""
from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from centaur.core.errors import CentaurError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# 40 megapixels covers every camera photo people label by hand (a 45 MP full-frame RAW export
# is the rare exception: raise the limit for it) while a 100k x 100k PNG bomb of a few KB,
# which would need 30 GB of RAM to decode, is refused from its header alone.
MAX_PIXELS = 40_000_000

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

# warnings.catch_warnings swaps the process-wide filter list and is not thread-safe before
# Python 3.14 (two overlapping threads can leave a filter behind for good). The server opens
# uploads from a thread pool, so our own calls take turns; only the header read is inside it.
_WARNINGS_LOCK = threading.Lock()

_FIX_REPLACE = "re-export or re-download it, or remove it (`centaur verify FOLDER` lists every such file)"


class ImageError(CentaurError):
    """An image file that cannot be used, naming the file and the reason.

    `source` is the file name (or the upload's name), `reason` the short cause that
    `verify_images` reports; the message adds what to do about it.
    """

    def __init__(self, source, reason, fix=_FIX_REPLACE):
        self.source = str(source)
        self.reason = reason
        self.fix = fix
        message = f"cannot use image {self.source!r}: {reason}"
        super().__init__(message + (f"; {fix}." if fix else "."))

    def __reduce__(self):
        # A custom __init__ breaks the default pickling of exceptions, and DataLoader workers
        # send their errors to the main process.
        return (type(self), (self.source, self.reason, self.fix))


def is_image_file(path) -> bool:
    """Whether `path` has an image suffix (case-insensitive); the file itself is not read.

    >>> is_image_file("cats/Tabby.JPG"), is_image_file("notes.txt")
    (True, False)
    """
    path = Path(path)
    # macOS writes "._name.jpg" AppleDouble metadata files beside real ones in zips and on
    # USB disks; they have an image suffix but never hold an image.
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("._")


def open_image(source: Source, max_pixels: int = MAX_PIXELS, *, name: str | None = None) -> Image.Image:
    """Open a path or the bytes of an upload as a fully decoded RGB image, or raise ImageError.

    A picture already in memory works too: a Pillow image (left as it is; an RGB copy is
    returned) or a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4), or floats in 0..1.

    The size is checked from the header before any pixel is decoded (decompression bombs),
    the whole image is then decoded so a truncated file fails here and not mid-training,
    EXIF orientation is applied, transparency is composited on white, and 16-bit or float
    images are scaled to 8 bits rather than clipped. Multi-frame files give their first frame.
    `name` labels bytes in error messages (an upload's file name).

    >>> img = open_image("cats/tabby.jpg")            # doctest: +SKIP
    >>> img.mode                                     # doctest: +SKIP
    'RGB'
    >>> open_image(request_body, name="upload.png")   # doctest: +SKIP
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<uploaded bytes>"
        data = bytes(source)
        if not data:
            raise ImageError(label, "empty file (0 bytes)", "send the file's contents, not an empty body")
        opener = lambda: Image.open(io.BytesIO(data))  # noqa: E731
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        _check_file(path, label)
        opener = lambda: Image.open(path)  # noqa: E731
    elif isinstance(source, (Image.Image, np.ndarray)):
        return _in_memory(source, max_pixels, name or f"<{type(source).__name__}>")
    else:
        raise TypeError(
            f"open_image takes a path (str or Path), bytes, a Pillow image or a numpy array, got "
            f"{type(source).__name__}; pass the file's path, or its contents as bytes."
        )

    img = _open_header(opener, label, max_pixels)
    # The context closes the file handle Pillow keeps for lazy decoding (and for later frames).
    with img:
        try:
            img.load()
        except Exception as error:  # Pillow's decoders raise OSError, SyntaxError, ValueError, zlib.error...
            raise ImageError(label, f"truncated or corrupt ({_describe(error)})") from error
        rgb = _to_rgb(_apply_orientation(img), label)
        if rgb is img:
            rgb = img.copy()  # detach from the file we are about to close
    return rgb


def _in_memory(source, max_pixels, label):
    """A Pillow image or a numpy array as an RGB Pillow image, under the same pixel limit."""
    if isinstance(source, np.ndarray):
        a = source
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or 0 in a.shape:
            raise ImageError(label, f"an array of shape {a.shape}", "give (height, width), (height, width, 3) "
                             "or (height, width, 4): channels last, as numpy and Pillow hold pictures")
        if a.dtype.kind == "f" and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1:
            a = (a * 255).round().astype(np.uint8)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8) * 255
        if a.dtype != np.uint8:
            raise ImageError(label, f"an array of {a.dtype} values", "give uint8 values (0 to 255) or "
                             "floats from 0 to 1")
        source = Image.fromarray(np.ascontiguousarray(a))
    width, height = source.size
    if width * height > max_pixels:
        raise ImageError(label, f"{width}x{height} = {width * height:,} pixels, over the limit of "
                         f"{max_pixels:,}", "resize it first, or raise max_pixels if you trust it")
    try:
        source.load()
    except Exception as error:
        raise ImageError(label, f"truncated or corrupt ({_describe(error)})") from error
    rgb = _to_rgb(_apply_orientation(source), label)
    return rgb.copy() if rgb is source else rgb


def verify_images(paths: Iterable, max_pixels: int = MAX_PIXELS) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Open every file fully and split them into usable ones and (path, reason) for the rest.

    Never raises for a bad file, so one broken download cannot stop a folder of thousands.

    >>> good, bad = verify_images(Path("photos").rglob("*.jpg"))   # doctest: +SKIP
    >>> bad[:1]                                                    # doctest: +SKIP
    [(PosixPath('photos/cut.jpg'), 'truncated or corrupt (image file is truncated)')]
    """
    good, bad = [], []
    for path in paths:
        path = Path(path)
        try:
            open_image(path, max_pixels=max_pixels).close()
        except ImageError as error:
            bad.append((path, error.reason))
        else:
            good.append(path)
    return good, bad


def _check_file(path: Path, label: str) -> None:
    """Refuse a path that is missing, not a regular file, or empty, before Pillow sees it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(label, "no such file", "check the path and the current directory") from None
    except OSError as error:
        raise ImageError(label, f"cannot read it ({_describe(error)})", "check its permissions") from None
    if path.is_dir():
        raise ImageError(label, "is a folder, not a file", "pass the image files inside it") from None
    if size == 0:
        raise ImageError(label, "empty file (0 bytes)")


def _open_header(opener, label: str, max_pixels: int) -> Image.Image:
    """Read only the header (Image.open is lazy) and refuse images over `max_pixels`."""
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # Our max_pixels is the limit that counts, checked below with a message that says
            # how to raise it; Pillow's own warning (above 89M pixels) would only be noise, or
            # wrong when the caller has deliberately allowed a larger image.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = opener()
    except Image.DecompressionBombError as error:
        # Above twice Pillow's MAX_IMAGE_PIXELS, Pillow refuses in Image.open itself.
        raise ImageError(
            label,
            f"too many pixels for Pillow ({error}); limit here is {max_pixels:,}",
            "if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS as well as max_pixels",
        ) from None
    except UnidentifiedImageError:
        raise ImageError(label, "not an image Pillow can read") from None
    except OSError as error:
        if error.errno is not None:  # the file system's error (permissions, I/O), not Pillow's
            raise ImageError(label, f"cannot read it ({_describe(error)})", "check its permissions") from None
        raise ImageError(label, f"truncated or corrupt header ({_describe(error)})") from None
    except Exception as error:  # a recognised format whose header is damaged
        raise ImageError(label, f"truncated or corrupt header ({_describe(error)})") from None

    width, height = img.size
    pixels = width * height
    if pixels > max_pixels:
        img.close()
        raise ImageError(
            label,
            f"{width}x{height} is {pixels:,} pixels, more than the limit of {max_pixels:,} "
            "(it could be a decompression bomb)",
            "if you trust the file, pass a larger max_pixels, or shrink the image first",
        )
    return img


def _apply_orientation(img: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says, so a phone photo stands upright."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        # Broken EXIF metadata does not make the pixels unusable; keep them as stored.
        return img


def _to_rgb(img: Image.Image, label: str) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    mode = img.mode
    try:
        if mode.startswith("I") or mode == "F":
            return _numeric_to_rgb(img)
        if img.has_transparency_data:
            # convert("RGB") would keep whatever colour sits under transparent pixels (often
            # black or noise in emoji and icon PNGs); on white they look as they are shown.
            if mode == "La":  # premultiplied; Pillow converts it only to LA
                img = img.convert("LA")
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        if mode == "RGB":
            return img
        return img.convert("RGB")
    except Exception as error:
        raise ImageError(
            label, f"cannot convert its {mode} pixels to RGB ({_describe(error)})",
            "save it as an 8-bit RGB PNG or JPEG",
        ) from error


def _numeric_to_rgb(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float pixels to 0..255 by their nominal range.

    Pillow's convert("L") clips these at 255, which turns a 16-bit photo almost all white.
    """
    values = np.asarray(img)  # (H, W); I;16B arrives big-endian, numpy handles the order
    if img.mode.startswith("I;16"):
        # A 16-bit container: 65535 is white whatever the image holds, so shift, not stretch.
        gray = (values.astype(np.uint16) >> 8).astype(np.uint8)
    else:
        values = values.astype(np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        values[~np.isfinite(values)] = low  # NaN and inf carry no brightness: show them as the darkest
        # Mode I and F do not say their range, so infer the usual one from the data: floats
        # in 0..1, then 8-bit and 16-bit values (mode I mostly comes from 16-bit files);
        # anything else is stretched from its minimum to its maximum.
        if low >= 0 and high <= 1 and img.mode == "F":
            scale, offset = 255.0, 0.0
        elif low >= 0 and high <= 255:
            scale, offset = 1.0, 0.0
        elif low >= 0 and high <= 65535:
            scale, offset = 255.0 / 65535.0, 0.0
        else:
            scale, offset = (255.0 / (high - low) if high > low else 0.0), low
        gray = np.clip(np.rint((values - offset) * scale), 0, 255).astype(np.uint8)
    rgb = Image.fromarray(gray).convert("RGB")
    transparency = img.info.get("transparency")
    if isinstance(transparency, int):
        # A 16-bit grey PNG can mark one value transparent (tRNS); show it as white, as above.
        mask = Image.fromarray(np.asarray(img) == transparency)
        rgb.paste((255, 255, 255), mask=mask)
    return rgb


def _describe(error: Exception) -> str:
    """Pillow's message for an error, or its type when the message is empty."""
    text = str(error).strip()
    return text or type(error).__name__
