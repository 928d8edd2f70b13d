"""What a notebook shows: pictures as PNG with a short text form, short reprs instead of
'<... object at 0x...>', plain Python numbers, top losses as a picture, and no stray warnings."""
import base64
import io
import subprocess
import sys

import pytest
import torch
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.core.figures import PNG
from centaur.data.block import DataBlock
from centaur.interpret.classification import ClassificationInterpretation

from conftest import ROOT, two_colour_dls


def png_of(width, height):
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_png_repr_is_short_and_says_the_size_while_staying_bytes():
    raw = png_of(640, 704)
    png = PNG(raw)
    assert repr(png) == f"<PNG 640x704, {round(len(raw) / 1024)} KB>"
    assert str(png) == repr(png)  # print(png) too
    assert png == raw and bytes(png) == raw and isinstance(png, bytes) and len(png) == len(raw)
    assert png._repr_png_() == raw
    assert base64.b64encode(png) == base64.b64encode(raw)  # what a server sends
    big = PNG(raw[:24] + bytes(100_000))
    assert repr(big) == "<PNG 640x704, 98 KB>"
    assert repr(PNG(b"not a png")) == "<PNG, 9 bytes>"


def test_datablock_repr_shows_the_recipe():
    from centaur.data.augment import aug_transforms
    from centaur.data.blocks import CategoryBlock, ImageBlock
    from centaur.data.getters import get_image_files, parent_label
    from centaur.data.splitters import RandomSplitter
    from centaur.data.transforms import Resize
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=RandomSplitter(0.2, seed=42), item_tfms=Resize(128), batch_tfms=aug_transforms())
    text = repr(dblock)
    assert " object at 0x" not in text
    for part in ("blocks=(ImageBlock, CategoryBlock)", "get_items=get_image_files", "get_y=parent_label",
                 "splitter=RandomSplitter(valid_pct=0.2, seed=42)", "item_tfms=[Resize(size=(128, 128)",
                 "batch_tfms=[BatchAugment("):
        assert part in text
    assert repr(DataBlock()) == "DataBlock(blocks=(ImageBlock, None))"


def test_dataloaders_repr_counts_items_and_names_classes():
    dls = two_colour_dls(n_train=48, n_valid=16, bs=12)
    assert repr(dls) == "<DataLoaders: 48 training and 16 validation items, bs 12; 2 classes (a, b)>"


def test_per_class_gives_plain_python_numbers():
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    rows = ClassificationInterpretation(probs, [0, 1, 1], ["cat", "dog"]).per_class()
    for row in rows:
        assert {type(row[k]) for k in ("precision", "recall", "f1")} == {float} and type(row["support"]) is int
    assert repr(rows[0]["precision"]) == "0.5"


def test_interpretation_repr():
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    interp = ClassificationInterpretation(probs, [0, 1, 1], ["cat", "dog"])
    assert repr(interp) == "<ClassificationInterpretation: 3 items, 2 classes (cat, dog), accuracy 0.667>"


def _trained_learner():
    from torch import nn

    from centaur.models.heads import BodyHead, create_head
    from centaur.train.learner import Learner
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    learn = Learner(two_colour_dls(), BodyHead(body, create_head(4, 2, hidden=8)), progress=False)
    learn.fit(1, 1e-2)
    return learn


def test_plot_top_losses_from_a_learner(tmp_path):
    learn = _trained_learner()
    interp = ClassificationInterpretation.from_learner(learn)
    png = interp.plot_top_losses(4, path=tmp_path / "top.png")
    assert isinstance(png, PNG) and png.startswith(b"\x89PNG") and (tmp_path / "top.png").read_bytes() == png
    plain = interp.plot_top_losses(4, heatmap=False)
    assert isinstance(plain, PNG) and plain != png  # the heatmap changes the picture
    with pytest.raises(CentaurError, match="no images to show.*from_learner"):
        ClassificationInterpretation(interp.probs, interp.targets, interp.classes).plot_top_losses()


def test_plot_top_losses_keeps_the_models_training_mode():
    learn = _trained_learner()
    interp = ClassificationInterpretation.from_learner(learn)
    learn.model.train()  # a user about to train on: the heatmaps use eval mode, then give training mode back
    interp.plot_top_losses(2)
    assert learn.model.training


def test_plot_top_losses_from_a_model_directory(tmp_path, tiny_model, tiny_data):
    interp = ClassificationInterpretation.from_model_dir(tiny_model, tiny_data)
    png = interp.plot_top_losses(3)
    width, height = Image.open(io.BytesIO(png)).size
    assert repr(png).startswith(f"<PNG {width}x{height}, ")


NOTEBOOK = """
import sys, warnings, IPython
import ipykernel.zmqshell  # what tqdm.autonotebook takes for a running notebook
class ZMQInteractiveShell: pass
IPython.get_ipython = lambda: ZMQInteractiveShell()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    exec(sys.argv[1])
print([str(w.message) for w in caught])
"""


@pytest.mark.parametrize("statement,warned", [("import timm", True), ("import centaur.models.backbones", False)])
def test_importing_timm_through_centaur_in_a_notebook_does_not_warn_about_ipywidgets(statement, warned):
    pytest.importorskip("ipykernel")
    try:
        import ipywidgets  # noqa: F401
        pytest.skip("ipywidgets is installed: tqdm has nothing to warn about")
    except ImportError:
        pass
    out = subprocess.run([sys.executable, "-c", NOTEBOOK, statement], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert ("IProgress not found" in out.stdout) is warned  # plain timm does warn: the test can fail
