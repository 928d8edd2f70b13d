"""Shared test helpers: small copies of the embedded emoji data, odd image files, one tiny trained model."""
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


ROOT = Path(__file__).resolve().parents[1]
EMOJI = ROOT / "data" / "emoji"

# The browser tests drive Debian's Chromium through Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CENTAUR_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM}; `make test` installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


# Small settings keep a training run to seconds on 2 CPU cores.
TINY_TRAIN = ["--size", "32", "--epochs", "1", "--freeze-epochs", "1", "--bs", "16"]


def copy_emoji(dest, classes=("animal", "face", "food"), per_class=12, skip=0):
    """Copy `per_class` real images of each class into dest/<class>/; returns dest."""
    dest = Path(dest)
    for cls in classes:
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((EMOJI / cls).glob("*.png"))[skip:skip + per_class]:
            (dest / cls / f.name).write_bytes(f.read_bytes())
    return dest


def two_colour_dls(n_train=48, n_valid=16, bs=12, seed=0):
    """DataLoaders of tiny 6x6 images in two classes a model learns in a few steps: 'a' adds to the
    red channel, 'b' to the blue. The pixels are always the same; `seed` sets the shuffling."""
    from centaur.data.blocks import CategoryBlock, TensorImageBlock
    from centaur.data.loaders import DataLoaders, Datasets
    g = torch.Generator().manual_seed(123)
    labels = ["a" if i % 3 else "b" for i in range(n_train + n_valid)]
    xs = torch.randint(0, 80, (n_train + n_valid, 3, 6, 6), generator=g)
    for i, label in enumerate(labels):
        xs[i, 0 if label == "a" else 2] += 100
    xs = list(xs.to(torch.uint8))
    y_block = CategoryBlock()
    y_block.setup(labels)
    return DataLoaders(Datasets(xs[:n_train], labels[:n_train], TensorImageBlock(), y_block, [], train=True),
                       Datasets(xs[n_train:], labels[n_train:], TensorImageBlock(), y_block, [], train=False),
                       bs=bs, seed=seed)


def emoji_image(cls="animal", idx=0):
    return Image.open(sorted((EMOJI / cls).glob("*.png"))[idx])


def write_odd_images(folder, cls="animal"):
    """Readable images in awkward formats (all must be converted, none skipped); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = emoji_image(cls, 0).convert("RGBA")
    paths = {}
    paths["rgba"] = folder / "rgba.png"
    base.save(paths["rgba"])
    paths["gray"] = folder / "gray.png"
    base.convert("L").save(paths["gray"])
    paths["palette"] = folder / "palette.png"
    base.convert("RGB").convert("P").save(paths["palette"])
    paths["gray16"] = folder / "gray16.png"
    gray = np.asarray(base.convert("L"), dtype=np.uint16) * 257  # (H, W) full 16-bit range
    Image.fromarray(gray).save(paths["gray16"])
    paths["cmyk"] = folder / "cmyk.jpg"
    base.convert("RGB").convert("CMYK").save(paths["cmyk"])
    paths["exif"] = folder / "exif_rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    base.convert("RGB").resize((64, 48)).save(paths["exif"], exif=exif)
    return paths


def write_bad_files(folder, cls="animal"):
    """Files with image suffixes that cannot be used; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    emoji_image(cls, 1).save(buf, format="PNG")
    paths = {"zero": folder / "zero.jpg", "junk": folder / "junk.png", "text": folder / "notes.jpg",
             "truncated": folder / "truncated.png"}
    paths["zero"].write_bytes(b"")
    paths["junk"].write_bytes(os.urandom(300))
    paths["text"].write_text("this is not a picture\n")
    paths["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return paths


@pytest.fixture
def log_to_capsys(capsys):
    """capsys, named for what the tests use it for: centaur's logger writes to the current stderr."""
    return capsys


def run_centaur(*args, cwd=None, timeout=300):
    """Run the `centaur` command in a fresh process, as a user would; returns CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "centaur.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """3 classes x 12 real emoji images (random split)."""
    return copy_emoji(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_data):
    """A model directory fine-tuned for one frozen and one unfrozen epoch at 32 px (seconds)."""
    from centaur.vision.recipes import train_image_classifier
    out = tmp_path_factory.mktemp("tiny_model") / "model"
    train_image_classifier(tiny_data, out, size=32, epochs=1, freeze_epochs=1, bs=16, progress=False)
    return out
