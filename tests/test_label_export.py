"""Export from the labeling workbench: label and prediction files round trip, class folders that
`centaur train` reads as is, and the trained head as a model directory Predictor loads."""
import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch

from centaur.core.errors import CentaurError
from centaur.data.getters import get_image_files
from centaur.inference import Predictor
from centaur.label.export import (MARKER, write_class_folders, write_labels_csv, write_labels_json,
                                  write_model_dir, write_predictions_csv)
from centaur.label.learn import train_head
from centaur.models import classifier, model_dir
from centaur.models.model_dir import load_model_dir, read_meta

from conftest import EMOJI
from test_label_learn import SIZE, embed

RECORDS = [
    {"image_id": 1, "path": "cats/a.png", "label": "cat", "author": "ann", "how": "lasso",
     "at": "2025-01-02T10:00:00+00:00"},
    {"image_id": 2, "path": "more/b, \"quoted\".png", "label": "dog, big", "author": "bob\nsmith", "how": "single",
     "at": "2025-01-02T10:01:00+00:00"},
    {"image_id": 3, "path": "ünï/c.png", "label": "chat noir", "author": None, "how": "accepted prediction",
     "at": "2025-01-02T10:02:00+00:00"},
]


def test_labels_csv_and_json_round_trip(tmp_path):
    out = write_labels_csv(RECORDS, tmp_path / "exports" / "labels.csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "author", "how", "at"]
    expected = [{k: (r[k] or "") for k in ("path", "label", "author", "how", "at")} for r in RECORDS]
    assert rows == expected
    out = write_labels_json(RECORDS, tmp_path / "labels.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "centaur-labels" and doc["count"] == 3
    assert doc["labels"] == [{k: r[k] for k in ("path", "label", "author", "how", "at")} for r in RECORDS]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left
    with pytest.raises(CentaurError, match="record 0"):
        write_labels_csv(["cats/a.png"], tmp_path / "bad.csv")


def test_predictions_csv(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    out = write_predictions_csv(["x/1.png", "x/2.png"], ["cat", "dog", "eel"], probs, tmp_path / "p.csv",
                                labels=["cat", None])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "prediction", "confidence", "prob_cat", "prob_dog", "prob_eel", "label"]
    assert [r["prediction"] for r in rows] == ["cat", "eel"] and [r["label"] for r in rows] == ["cat", ""]
    got = np.array([[float(r[f"prob_{c}"]) for c in ("cat", "dog", "eel")] for r in rows])
    np.testing.assert_allclose(got, probs, atol=1e-6)
    assert float(rows[1]["confidence"]) == pytest.approx(0.8)
    out = write_predictions_csv(["x/1.png"], ["cat", "dog", "eel"], probs[:1], tmp_path / "q.csv")
    assert "label" not in out.read_text().splitlines()[0]
    with pytest.raises(CentaurError, match=r"\(2, 3\)"):
        write_predictions_csv(["x/1.png", "x/2.png"], ["cat", "dog", "eel"], probs[:1], tmp_path / "r.csv")


@pytest.fixture
def project(tmp_path):
    """A project folder with emoji in two subfolders, two of them sharing a file name."""
    root = tmp_path / "project"
    animals = sorted((EMOJI / "animal").glob("*.png"))[:4]
    faces = sorted((EMOJI / "face").glob("*.png"))[:4]
    for sub, files in (("day1", animals[:2] + faces[:2]), ("day2", animals[2:] + faces[2:])):
        (root / sub).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / sub / f.name)
    shutil.copy(animals[3], root / "day1" / "same.png")
    shutil.copy(animals[2], root / "day2" / "same.png")
    shutil.copy(faces[0], root / "day2" / "SAME.PNG")  # differs only in case: clashes on macOS and Windows
    records = [{"path": p.relative_to(root).as_posix(),
                "label": "animal" if p.name in {a.name for a in animals} or p.name.lower() == "same.png" else "face"}
               for p in get_image_files(root)]
    records.append({"path": "day2/unlabeled.png", "label": None})
    return root, records


def test_class_folders_links_and_copies(project, tmp_path):
    root, records = project
    counts = write_class_folders(root, records, tmp_path / "links", mode="link")
    assert counts == {"animal": 7, "face": 4}
    names = sorted(p.name for p in (tmp_path / "links" / "animal").iterdir())
    # three files named same.png ignoring case: named after their paths, the last clash numbered
    assert {"day1__same.png", "day2__SAME.PNG", "day2__same-2.png"} <= set(names) and "same.png" not in names
    for p in (tmp_path / "links").glob("*/*"):
        assert p.is_symlink() and os.path.isabs(os.readlink(p)) and p.resolve().is_relative_to(root.resolve())
    assert (tmp_path / "links" / "animal" / "day2__same-2.png").resolve() == (root / "day2" / "same.png").resolve()
    manifest = json.loads((tmp_path / "links" / MARKER).read_text())
    assert manifest["counts"] == counts and manifest["mode"] == "link"

    counts = write_class_folders(root, records, tmp_path / "copies", mode="copy")
    assert counts == {"animal": 7, "face": 4}
    copied = tmp_path / "copies" / "animal" / "day1__same.png"
    assert not copied.is_symlink() and copied.read_bytes() == (root / "day1" / "same.png").read_bytes()
    # the same records give the same names every time
    assert sorted(p.name for p in (tmp_path / "copies" / "animal").iterdir()) == names
    with pytest.raises(CentaurError, match="export mode"):
        write_class_folders(root, records, tmp_path / "x", mode="hardlink")


def test_class_folders_train_as_is(project, tmp_path):
    from centaur.vision.recipes import image_datablock
    root, records = project
    out = tmp_path / "by-class"
    write_class_folders(root, records, out)
    dblock, how = image_datablock(out, size=32, augment=False, seed=0)
    dls = dblock.dataloaders(out, bs=4, seed=0)
    assert list(dls.vocab) == ["animal", "face"] and how == "random"
    assert len(dls.train_ds) + len(dls.valid_ds) == 11
    xb, yb = dls.train.one_batch()
    assert xb.shape[1:] == (3, 32, 32)


def test_labels_csv_trains_as_is_wherever_it_was_saved(project, tmp_path):
    from centaur.vision.recipes import image_datablock
    root, records = project
    labeled = [r for r in records if r["label"]]
    csv_path = write_labels_csv(labeled, tmp_path / "Downloads" / "labels.csv", root=root)
    header = csv_path.read_text().splitlines()[0]
    assert header == "file,path,label,author,how,at"  # `file`, as `centaur train` reads by default
    dblock, _ = image_datablock(csv_path, size=32, augment=False, seed=0)
    dls = dblock.dataloaders(csv_path, bs=4, seed=0)
    assert list(dls.vocab) == ["animal", "face"] and len(dls.train_ds) + len(dls.valid_ds) == 11


def test_class_folders_refuse_what_they_should(project, tmp_path):
    root, records = project
    with pytest.raises(CentaurError, match="inside the project folder"):
        write_class_folders(root, records, root / "export")
    with pytest.raises(CentaurError, match="inside the project folder"):
        write_class_folders(root, records, root)
    # the project's own hidden folder is fine: scanning skips hidden folders
    assert write_class_folders(root, records, root / ".centaur" / "export" / "classes") == {"animal": 7, "face": 4}
    assert len(get_image_files(root)) == 11
    with pytest.raises(CentaurError, match="holds the project folder"):
        write_class_folders(root, records, tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(CentaurError, match="not a previous class-folder export"):
        write_class_folders(root, records, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"
    (tmp_path / "empty").mkdir()
    assert write_class_folders(root, records, tmp_path / "empty") == {"animal": 7, "face": 4}
    with pytest.raises(CentaurError, match="cannot be a folder name"):
        write_class_folders(root, [{"path": records[0]["path"], "label": "a/b"}], tmp_path / "slash")
    with pytest.raises(CentaurError, match="two labels"):
        write_class_folders(root, [{"path": "day1/same.png", "label": "a"}, {"path": "day1/same.png", "label": "b"}],
                            tmp_path / "twice")


def test_class_folders_replace_a_previous_export_whole(project, tmp_path, log_to_capsys):
    root, records = project
    out = tmp_path / "export"
    write_class_folders(root, records, out)
    relabeled = [dict(r, label="thing") if r["label"] else r for r in records]
    relabeled.append({"path": "day1/gone.png", "label": "thing"})  # deleted since it was labeled
    assert write_class_folders(root, relabeled, out, mode="copy") == {"thing": 11}
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "thing"])
    assert "no longer exist" in log_to_capsys.readouterr().err
    # the original images are untouched by replacing an export of links
    assert len(get_image_files(root)) == 11
    (out / "thing" / "added by hand.png").write_bytes(b"x")
    with pytest.raises(CentaurError, match="added by hand.png"):
        write_class_folders(root, records, out)
    assert (out / "thing" / "added by hand.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build folders left behind


@pytest.fixture(scope="module")
def trained_head():
    files = get_image_files(EMOJI)
    result = train_head(embed(files), [f.parent.name for f in files])
    return files, result


def test_model_directory_predicts_like_the_head_on_features(trained_head, tmp_path):
    files, result = trained_head
    embedder_meta = {"arch": "lite0", "timm_arch": "tf_efficientnet_lite0", "size": SIZE, "resize": "squish",
                     "pooling": "average", "mean": [0.5] * 3, "std": [0.5] * 3,
                     "layers": {"last": "conv_head"}, "dims": {"last": 1280}}  # the shape of Embedder.meta
    out = write_model_dir(result, embedder_meta, tmp_path / "model")
    meta = read_meta(out)[1]
    prep = meta["preprocessing"]
    assert prep["head"] == "linear" and prep["item_tfms"] == [{"name": "Resize", "size": [SIZE, SIZE],
                                                               "method": "squish"}]
    assert meta["classes"] == result.classes and meta["task"] == "single_label" and meta["arch"] == "lite0"
    assert meta["metrics"]["accuracy"]["value"] == round(result.accuracy, 4)
    assert f"on {len(files)} labels" in meta["provenance"]["training"]
    predictor = Predictor(out)
    sample = files[::47]  # eight images across the classes
    expected = result.predict_proba(embed(sample))  # (8, 6): the head on features computed independently
    for f, probs in zip(sample, expected):
        got = predictor.predict(f, top_k=6)
        by_class = {t["label"]: t["probability"] for t in got["top_k"]}
        np.testing.assert_allclose([by_class[c] for c in result.classes], probs, atol=1e-3)
        assert got["label"] == result.classes[int(probs.argmax())]
    with pytest.raises(CentaurError, match="'last' layer"):
        write_model_dir(result, {"size": SIZE, "layer": "block4"}, tmp_path / "other")
    with pytest.raises(CentaurError, match="average-pooled"):
        write_model_dir(result, {"size": SIZE, "pooling": "max"}, tmp_path / "other")
    with pytest.raises(CentaurError, match="lacks 'size'"):
        write_model_dir(result, {"arch": "lite0"}, tmp_path / "other")


def test_head_kinds_in_model_directories(tmp_path):
    assert model_dir.HEADS == classifier.HEADS
    model, prep = classifier.create_classifier("resnet10t", 3, pretrained=False, hidden=16)
    assert prep["head"] == "fastai"
    prep = {k: v for k, v in prep.items() if k != "head"}  # as written before the linear head existed
    meta = {"task": "single_label", "arch": "resnet10t", "num_outputs": 3, "classes": ["a", "b", "c"],
            "preprocessing": prep}
    path = model_dir.write_model_dir(tmp_path / "old", model, meta)
    loaded, _ = load_model_dir(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model.eval()(x))
    meta["preprocessing"] = dict(prep, head="transformer")
    path = model_dir.write_model_dir(tmp_path / "new", model, meta)
    with pytest.raises(CentaurError, match="unknown head kind"):
        read_meta(path)
    linear, prep = classifier.create_classifier("resnet10t", 2, pretrained=False, head="linear")
    assert prep["head"] == "linear" and "hidden" not in prep and isinstance(linear.head[-1], torch.nn.Linear)
    assert linear.head[-1].bias is not None and linear.head[-1].in_features == prep["num_features"]
    with pytest.raises(CentaurError, match="unknown head"):
        classifier.create_classifier("resnet10t", 2, pretrained=False, head="mlp")
