"""Prediction from a model directory: `centaur predict` / `centaur info` and the Python Predictor."""
import json
import subprocess
import sys

import pytest
import torch

from centaur.cli import main
from centaur.core.errors import CentaurError
from centaur.core.images import ImageError
from centaur.data.getters import get_image_files
from centaur.data.splitters import RandomSplitter
from centaur.inference import Predictor

from conftest import EMOJI, write_bad_files

CLASSES = ["animal", "face", "food"]


def json_lines(text):
    return [json.loads(line) for line in text.strip().splitlines()]


def check_row(row, top_k=3):
    assert set(row) == {"file", "label", "probability", "top_k"}
    assert row["label"] in CLASSES and 0 <= row["probability"] <= 1
    assert len(row["top_k"]) == top_k
    assert row["top_k"][0] == {"label": row["label"], "probability": row["probability"]}
    probs = [t["probability"] for t in row["top_k"]]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) <= 1 + 1e-5


# --- the command line ---

def test_predict_files_and_folders_as_json_lines(capsys, tiny_model, tiny_data):
    one = tiny_data / "animal" / sorted(p.name for p in (tiny_data / "animal").iterdir())[0]
    status = main(["predict", str(tiny_model), str(one), str(tiny_data / "food")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    rows = json_lines(captured.out)
    assert [r["file"] for r in rows] == [str(one)] + [str(p) for p in get_image_files(tiny_data / "food")]
    for row in rows:
        check_row(row)


def test_predict_top_k(capsys, tiny_model, tiny_data):
    assert main(["predict", str(tiny_model), str(tiny_data / "face"), "--top-k", "1"]) == 0
    for row in json_lines(capsys.readouterr().out):
        check_row(row, top_k=1)
    assert main(["predict", str(tiny_model), str(tiny_data / "face"), "--top-k", "10"]) == 0
    for row in json_lines(capsys.readouterr().out):
        check_row(row, top_k=3)  # never more than there are classes


def test_predict_a_corrupt_file_gives_an_error_line_and_the_others_still_predict(capsys, tiny_model,
                                                                                 tiny_data, tmp_path):
    bad = write_bad_files(tmp_path / "bad")
    good = get_image_files(tiny_data / "animal")[:3]
    paths = [good[0], bad["junk"], good[1], bad["zero"], bad["truncated"], good[2]]
    status = main(["predict", str(tiny_model), *map(str, paths), "--bs", "2"])
    captured = capsys.readouterr()
    assert status == 0
    rows = json_lines(captured.out)
    assert [r["file"] for r in rows] == [str(p) for p in paths]  # input order, errors in place
    for row, path in zip(rows, paths):
        if path in good:
            check_row(row)
        else:
            assert set(row) == {"file", "error"} and path.name in row["error"]
    assert "3 of 6 files could not be read" in captured.err and "Traceback" not in captured.err


def test_predict_only_bad_files_is_a_failure(capsys, tiny_model, tmp_path):
    bad = write_bad_files(tmp_path / "bad")
    assert main(["predict", str(tiny_model), str(bad["junk"])]) == 1
    captured = capsys.readouterr()
    assert "error" in json.loads(captured.out) and "1 of 1" in captured.err


def test_info_prints_model_json(capsys, tiny_model):
    assert main(["info", str(tiny_model)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads((tiny_model / "model.json").read_text())
    assert shown["classes"] == CLASSES and shown["arch"] == "lite0"
    assert shown["preprocessing"]["mean"] == [0.5, 0.5, 0.5]


def test_predict_into_a_closed_pipe_is_quiet(tiny_model, tiny_data):
    # `centaur predict MODEL FOLDER | head -n 1` (as `make demo` does): no BrokenPipeError traceback.
    # 400 lines of JSON overflow the pipe's buffer, so the writer does meet the closed pipe.
    image = str(get_image_files(tiny_data)[0])
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", "predict", str(tiny_model), *[image] * 400],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=120)
    assert json.loads(first)["file"] == image
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert proc.returncode == 0


# --- from Python ---

@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model, batch_size=4)


def test_predict_a_path_and_the_same_bytes(predictor, tiny_data):
    path = get_image_files(tiny_data / "food")[0]
    by_path = predictor.predict(path)
    assert set(by_path) == {"label", "probability", "top_k"} and by_path["label"] in CLASSES
    assert predictor.predict(str(path)) == by_path
    assert predictor.predict(path.read_bytes()) == by_path


def test_predict_many_keeps_order_and_matches_one_by_one(predictor, tiny_data, tmp_path):
    files = get_image_files(tiny_data)
    junk = write_bad_files(tmp_path)["junk"]
    sources = files[:5] + [junk] + [files[5].read_bytes()] + files[6:13]  # 13 good: batches of 4 and a rest
    rows = list(predictor.predict_many(sources, top_k=3))
    assert len(rows) == len(sources)
    assert [r["file"] for r in rows] == [str(s) if not isinstance(s, bytes) else "<bytes>" for s in sources]
    assert "error" in rows[5] and "junk.png" in rows[5]["error"]
    for source, row in zip(sources, rows):
        if source is junk:
            continue
        alone = predictor.predict(source, top_k=3)
        assert row["label"] == alone["label"]
        batched = {t["label"]: t["probability"] for t in row["top_k"]}
        single = {t["label"]: t["probability"] for t in alone["top_k"]}
        assert batched.keys() == single.keys()
        for label in batched:
            assert abs(batched[label] - single[label]) < 1e-5


def test_batched_forward_equals_one_by_one(predictor, tiny_data):
    xb = torch.stack([predictor.preprocess(p) for p in get_image_files(tiny_data)[:8]])  # (8, 3, 32, 32)
    together = predictor.forward(xb)
    alone = torch.cat([predictor.forward(x[None]) for x in xb])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together.sum(1), torch.ones(8))


def test_predictor_reproduces_the_validation_accuracy_in_model_json(predictor, tiny_model, tiny_data):
    # The model carries its preprocessing as data: predicting the validation images with only the
    # model directory must give the accuracy measured at the end of training.
    meta = json.loads((tiny_model / "model.json").read_text())
    prov = meta["provenance"]
    files = get_image_files(tiny_data)
    _, valid_idx = RandomSplitter(prov["valid_pct"], prov["seed"])(files)
    valid = [files[i] for i in valid_idx]
    assert len(valid) == meta["metrics"]["n_valid"]
    rows = list(predictor.predict_many(valid))
    accuracy = sum(r["label"] == p.parent.name for r, p in zip(rows, valid)) / len(valid)
    assert accuracy == pytest.approx(meta["metrics"]["accuracy"]["value"], abs=1e-3)


def test_predictor_errors(predictor, tmp_path):
    bad = write_bad_files(tmp_path)
    with pytest.raises(ImageError, match="zero.jpg"):
        predictor.predict(bad["zero"])
    with pytest.raises(ImageError):
        predictor.predict(b"")
    with pytest.raises(CentaurError, match="does not exist"):
        Predictor(tmp_path / "nomodel")
    with pytest.raises(ValueError):  # CentaurError is a ValueError for callers who catch that
        Predictor(tmp_path)
    with pytest.raises(CentaurError, match="does not exist"):
        predictor.predict_paths([tmp_path / "nothere.png"])


def test_predict_a_picture_already_in_memory(predictor, tiny_data):
    import numpy as np
    from PIL import Image
    from centaur.core.images import open_image
    path = get_image_files(tiny_data / "face")[0]
    by_path = predictor.predict(path)
    with Image.open(path) as img:
        assert predictor.predict(img) == by_path  # a Pillow image, as fastai's learn.predict takes
        mode = img.mode
        predictor.predict(img)
        assert img.mode == mode  # the caller's image is left as it was
    pixels = np.asarray(open_image(path))
    assert predictor.predict(pixels) == by_path  # uint8 (H, W, 3)
    assert predictor.predict(pixels / 255.0)["label"] == by_path["label"]  # floats in 0..1
    assert [r["file"] for r in predictor.predict_many([pixels, path])] == ["<ndarray>", str(path)]
    with pytest.raises(ImageError, match=r"shape \(3, 32, 32\).*channels last"):
        predictor.predict(np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ImageError, match="int64 values"):
        predictor.predict(np.zeros((32, 32, 3), np.int64))
    with pytest.raises(ImageError, match="over the limit"):
        open_image(np.zeros((10, 10, 3), np.uint8), max_pixels=50)


def test_predictor_says_what_it_takes(predictor, tiny_data):
    import pandas as pd
    folder = tiny_data / "food"
    # one folder as a plain string: its images, not the characters of its name ('/' is the whole disk)
    assert len(list(predictor.predict_paths(str(folder)))) == len(get_image_files(folder))
    with pytest.raises(TypeError, match=r"not a DataFrame \(for a table of file names, pass its column"):
        predictor.predict_paths(pd.DataFrame({"file": [str(folder)]}))
    with pytest.raises(TypeError, match="not a int"):
        predictor.predict_paths([3])
    with pytest.raises(TypeError, match="for one image use predict, for a folder predict_paths"):
        predictor.predict_many(str(folder))
    for k in (0, -1, "2", 1.5, True):
        with pytest.raises(ValueError, match="top_k is how many"):
            predictor.predict(get_image_files(folder)[0], top_k=k)
        with pytest.raises(ValueError, match="top_k is how many"):
            predictor.predict_many([folder], top_k=k)  # at the call, before any image is read
    with pytest.raises(TypeError, match="not a DataFrame"):
        Predictor(pd.DataFrame({"a": [1]}))


def test_predict_a_real_emoji_folder(predictor):
    rows = list(predictor.predict_paths([EMOJI / "flag"]))
    assert len(rows) == len(get_image_files(EMOJI / "flag"))
    assert all(r["label"] in CLASSES for r in rows)


def test_predictor_applies_exif_orientation_and_converts_modes(predictor, tmp_path):
    from PIL import Image, ImageOps

    from conftest import write_odd_images
    odd = write_odd_images(tmp_path)
    upright = tmp_path / "upright.png"
    with Image.open(odd["exif"]) as img:
        assert img.size == (64, 48)  # stored on its side
        ImageOps.exif_transpose(img).save(upright)  # (48 wide, 64 high) as a phone would show it
    torch.testing.assert_close(predictor.preprocess(odd["exif"]), predictor.preprocess(upright), atol=0, rtol=0)
    for path in odd.values():
        x = predictor.preprocess(path)
        assert x.shape == (3, 32, 32) and x.dtype == torch.uint8


def test_explain_gives_a_png_a_notebook_shows_and_a_short_repr(predictor, tiny_data, tiny_model):
    import base64
    from centaur.core.figures import PNG
    result, png = predictor.explain(get_image_files(tiny_data / "food")[0])
    assert result["label"] in CLASSES
    assert isinstance(png, PNG) and png._repr_png_() == bytes(png) and png.startswith(b"\x89PNG")
    assert base64.b64decode(base64.b64encode(png)) == png  # as the server sends it
    assert repr(png).startswith("<PNG 32x32, ")
    assert repr(predictor) == (f"<Predictor {str(tiny_model)!r}: single_label, 3 classes (animal, face, food); "
                               f"version {predictor.version}>")
