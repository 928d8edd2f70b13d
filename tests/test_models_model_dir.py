"""Model directories: export then load gives the same model; damaged or foreign ones are explained."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.core.seed import set_seed
from centaur.models.model_dir import FORMAT_VERSION, load_model_dir, read_meta
from centaur.train.export import export
from centaur.vision.learner import vision_learner
from centaur.vision.recipes import image_datablock


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A resnet10t from scratch trained one epoch on 24 synthetic 16px PNGs, and its model directory."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for label, channel in (("red", 0), ("blue", 2)):
        (root / label).mkdir()
        for i in range(12):
            pixels = rng.integers(0, 80, (16, 16, 3), dtype=np.uint8)
            pixels[..., channel] += 150
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    set_seed(0)
    dblock, _ = image_datablock(root, size=32, augment=False, seed=0)
    dls = dblock.dataloaders(root, bs=8, seed=0)
    learn = vision_learner(dls, "resnet10t", pretrained=False, hidden=16, progress=False)
    learn.unfreeze()
    learn.fit(1, lr=1e-3)
    out = export(learn, tmp_path_factory.mktemp("models") / "colors", metrics={"accuracy": 1.0},
                 provenance={"seed": 0})
    return learn, out


def test_export_then_load_gives_identical_outputs(trained):
    learn, out = trained
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors", "split.json"]
    # the weights as readable as the rest (safetensors alone writes them 0600: nobody else could load them)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == (out / "model.json").stat().st_mode & 0o777
    model, meta = load_model_dir(out)
    assert not model.training
    xb, _ = learn.dls.valid.one_batch()
    learn.model.eval()
    with torch.inference_mode():
        assert torch.equal(model(xb), learn.model(xb))
    assert meta["format"] == "centaur-model" and meta["format_version"] == FORMAT_VERSION
    assert meta["arch"] == "resnet10t" and meta["classes"] == ["blue", "red"] and meta["num_outputs"] == 2
    assert meta["task"] == "single_label" and meta["metrics"] == {"accuracy": 1.0}
    prep = meta["preprocessing"]
    assert prep["mean"] == pytest.approx([0.485, 0.456, 0.406]) and prep["hidden"] == 16
    assert prep["item_tfms"] == [{"name": "Resize", "size": [32, 32], "method": "squish"}]
    prov = meta["provenance"]
    assert prov["seed"] == 0 and prov["n_train"] + prov["n_valid"] == 24 and "torch" in prov["versions"]
    # the model.json or model.safetensors file itself is accepted in place of the folder
    assert read_meta(out / "model.json")[0] == out


def test_export_needs_preprocessing(trained, tmp_path):
    from centaur.train.learner import Learner
    learn, _ = trained
    plain = Learner(learn.dls, learn.model, progress=False)
    with pytest.raises(CentaurError, match="preprocessing"):
        export(plain, tmp_path / "m")


def damaged_copy(out, tmp_path, edit=None, text=None):
    """A copy of the model directory with model.json edited (a function of the dict) or replaced."""
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    if edit is not None:
        meta = json.loads((copy / "model.json").read_text())
        edit(meta)
        text = json.dumps(meta)
    if text is not None:
        (copy / "model.json").write_text(text)
    return copy


def test_missing_dir_and_files(trained, tmp_path):
    _, out = trained
    with pytest.raises(CentaurError, match="does not exist"):
        read_meta(tmp_path / "nowhere")
    copy = damaged_copy(out, tmp_path)
    (copy / "model.json").unlink()
    with pytest.raises(CentaurError, match="not a centaur model directory: model.json missing"):
        load_model_dir(copy)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CentaurError, match="model.json, model.safetensors missing"):
        read_meta(empty)


def test_pickle_and_other_files_refused(tmp_path):
    pkl = tmp_path / "export.pkl"
    pkl.write_bytes(b"\x80\x04N.")
    with pytest.raises(CentaurError, match="pickle.*never opens"):
        load_model_dir(pkl)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(CentaurError, match="is a file"):
        read_meta(other)


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ("\udcff", "not valid JSON"),
    ('{"name": "bert", "hidden_size": 768}', 'not a centaur model description'),
    ("[1, 2, 3]", "not a centaur model description"),
])
def test_invalid_or_foreign_json(trained, tmp_path, text, message):
    _, out = trained
    copy = damaged_copy(out, tmp_path)
    (copy / "model.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CentaurError, match=message):
        read_meta(copy)


def _set(key, value):
    return lambda meta: meta.__setitem__(key, value)


def _prep(key, value):
    return lambda meta: meta["preprocessing"].__setitem__(key, value)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.pop("arch"), "lacks the field 'arch'"),
    (lambda m: m.pop("num_outputs"), "lacks the field 'num_outputs'"),
    (lambda m: m.pop("preprocessing"), "lacks the field 'preprocessing'"),
    (_set("num_outputs", "2"), "field 'num_outputs' should be int, got str"),
    (_set("num_outputs", True), "field 'num_outputs' should be int, got bool"),
    (_set("arch", 5), "field 'arch' should be str, got int"),
    (_set("preprocessing", []), "field 'preprocessing' should be dict, got list"),
    (_set("format_version", FORMAT_VERSION + 1), "newer than this centaur reads.*upgrade"),
    (_set("task", "segmentation"), "unknown task 'segmentation'"),
    (_set("classes", ["blue", "red", "green"]), "lists 3 classes but num_outputs is 2"),
    (_set("classes", None), "'classes' should be a list of class names"),
    (_set("classes", "br"), "'classes' should be a list of class names"),
    (_set("num_outputs", 0), "at least 1"),
    (_prep("mean", [0.5, 0.5]), r"preprocessing.mean should be a list of 3 numbers"),
    (lambda m: m["preprocessing"].pop("std"), r"preprocessing.std should be a list of 3 numbers"),
    (_prep("std", [0.2, 0.0, 0.2]), "std must be positive"),
    (_prep("hidden", "16"), "preprocessing.hidden"),
    (_prep("dropout", 2), "preprocessing.dropout"),
])
def test_wrong_fields(trained, tmp_path, edit, message):
    _, out = trained
    with pytest.raises(CentaurError, match=message):
        load_model_dir(damaged_copy(out, tmp_path, edit))


def test_truncated_weights(trained, tmp_path):
    _, out = trained
    copy = damaged_copy(out, tmp_path)
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CentaurError, match="model.safetensors' is damaged"):
        load_model_dir(copy)


def test_weights_of_another_architecture(trained, tmp_path):
    _, out = trained
    with pytest.raises(CentaurError, match="do not fit the architecture 'resnet14t'"):
        load_model_dir(damaged_copy(out, tmp_path, _set("arch", "resnet14t")))


def test_weights_with_another_number_of_outputs(trained, tmp_path):
    _, out = trained

    def three_classes(meta):
        meta["num_outputs"], meta["classes"] = 3, ["a", "b", "c"]

    with pytest.raises(CentaurError, match="wrong shape"):
        load_model_dir(damaged_copy(out, tmp_path, three_classes))


def test_unknown_arch_in_model_json(trained, tmp_path):
    _, out = trained
    with pytest.raises(CentaurError, match="names an architecture.*Did you mean: 'resnet10t'"):
        load_model_dir(damaged_copy(out, tmp_path, _set("arch", "resnet10")))
