"""`centaur train` on awkward real-world folders: bad files skipped and listed, odd formats converted."""
import json

from centaur.cli import main
from centaur.inference import Predictor

from conftest import TINY_TRAIN, copy_emoji, write_bad_files, write_odd_images


def test_messy_folder_trains_skipping_and_listing_bad_files(log_to_capsys, tmp_path):
    # train/ and valid/ folders, so the class with one image is certainly in training
    data = tmp_path / "messy"
    copy_emoji(data / "train", per_class=8)
    copy_emoji(data / "valid", per_class=3, skip=8)
    odd = write_odd_images(data / "train" / "animal")
    bad = {**write_bad_files(data / "train" / "face"), "valid_zero": data / "valid" / "food" / "empty.png"}
    bad["valid_zero"].write_bytes(b"")
    copy_emoji(data / "train", classes=("flag",), per_class=1)  # a class with a single image
    (data / "train" / "notes.txt").write_text("not an image suffix: never even looked at")
    out = tmp_path / "model"

    status = main(["train", str(data), "--out", str(out), *TINY_TRAIN])
    err = log_to_capsys.readouterr().err
    assert status == 0, err
    assert "Traceback" not in err and "error:" not in err
    # every unusable file is named once in the warning, and no readable one is
    for path in bad.values():
        assert path.name in err, path
    for path in odd.values():
        assert path.name not in err, path
    assert "skipped 5 unreadable" in err
    # a class with a single training image is warned about, and still learned
    assert "single image" in err and "['flag']" in err
    assert "train/valid folders" in err

    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["animal", "face", "flag", "food"]
    assert meta["provenance"]["skipped_files"] == 5
    assert meta["provenance"]["n_train"] == 3 * 8 + len(odd) + 1
    assert meta["provenance"]["n_valid"] == 3 * 3
    for name in ("model.safetensors", "report.json", "loss.png", "batch.png"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.safetensors").exists()  # removed once the model is written
    split = json.loads((out / "split.json").read_text())  # which files validated, for `centaur report`
    assert len(split["train"]) == meta["provenance"]["n_train"] and len(split["valid"]) == 3 * 3
    assert all(f.startswith("valid/") and f.split("/")[1] == label for f, label in split["valid"])

    # the awkward formats also predict: converted, not refused
    rows = list(Predictor(out).predict_many(list(odd.values())))
    assert [r["file"] for r in rows] == [str(p) for p in odd.values()]
    assert all("label" in r for r in rows), rows


def test_csv_of_file_and_label_trains(capsys, tmp_path):
    data = copy_emoji(tmp_path / "images", per_class=10)
    rows = [f"images/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(data.rglob("*.png"))]
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\n" + "\n".join(rows) + "\n")  # paths relative to the CSV's folder
    out = tmp_path / "model"
    status = main(["train", str(csv), "--out", str(out), *TINY_TRAIN])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "accuracy" in captured.out and "baseline" in captured.out and "95% CI" in captured.out
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["animal", "face", "food"]
    assert meta["provenance"]["n_train"] + meta["provenance"]["n_valid"] == 30
    report = json.loads((out / "report.json").read_text())
    assert 0 <= report["accuracy"]["ci95"][0] <= report["accuracy"]["value"] <= report["accuracy"]["ci95"][1] <= 1
    assert report["baseline"]["strategy"] == "majority class"


def test_images_loose_beside_class_folders_are_refused_before_any_is_read(capsys, tmp_path):
    data = copy_emoji(tmp_path / "trip", classes=("animal",), per_class=4)
    (data / "animal").rename(data / "field trip")
    for f in sorted((data / "field trip").iterdir())[:2]:  # unsorted photos left in the folder itself
        (data / f"loose_{f.name}").write_bytes(f.read_bytes())
    assert main(["train", str(data), "--out", str(tmp_path / "m"), *TINY_TRAIN]) == 2
    err = capsys.readouterr().err
    assert "2 image(s) lie directly in" in err and "a class named 'trip'" in err and "centaur label" in err
    split = copy_emoji(tmp_path / "split" / "train", per_class=3).parent
    copy_emoji(split / "valid", per_class=2)
    (split / "train" / "stray.png").write_bytes(next((split / "valid" / "face").iterdir()).read_bytes())
    assert main(["train", str(split), "--out", str(tmp_path / "m"), *TINY_TRAIN]) == 2
    assert "a class named 'train'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
