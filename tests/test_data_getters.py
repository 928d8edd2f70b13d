"""Tests for centaur.data.getters: finding image files and reading x and y from items."""
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.data.getters import ColReader, RegexLabeller, get_image_files, is_missing, parent_label, read_table


def touch_image(path, size=(4, 4)):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path, format="PNG")
    return path


def names(files, root):
    return [str(Path(f).relative_to(root)) for f in files]


# --- get_image_files ------------------------------------------------------------------------

def test_get_image_files_recurses_and_sorts(tmp_path):
    for rel in ["b/2.png", "a/1.png", "a/deep/er/3.png", "top.png"]:
        touch_image(tmp_path / rel)
    found = get_image_files(tmp_path)
    assert names(found, tmp_path) == ["a/1.png", "a/deep/er/3.png", "b/2.png", "top.png"]
    assert all(isinstance(f, Path) for f in found)
    assert names(get_image_files(tmp_path, recurse=False), tmp_path) == ["top.png"]
    assert get_image_files(str(tmp_path)) == found  # a str path works as well as a Path


def test_a_model_written_inside_the_data_is_not_data(tmp_path):
    touch_image(tmp_path / "cow" / "1.png")
    for name in ("loss.png", "batch.png"):  # what `centaur train --out data/model` leaves there
        touch_image(tmp_path / "model" / name)
    (tmp_path / "model" / "model.json").write_text("{}")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"")
    touch_image(tmp_path / "notes" / "model.json.png")  # a folder that only looks like one stays
    assert names(get_image_files(tmp_path), tmp_path) == ["cow/1.png", "notes/model.json.png"]


def test_get_image_files_suffix_case_and_non_images(tmp_path):
    for rel in ["a/x.JPG", "a/y.Jpeg", "a/z.PnG", "a/w.webp", "a/v.tif"]:
        touch_image(tmp_path / rel)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "archive.jpg.zip").write_bytes(b"PK")
    (tmp_path / "a" / "noext").write_bytes(b"")
    (tmp_path / "a" / "folder.png").mkdir()  # a folder with an image suffix is not a file
    assert names(get_image_files(tmp_path), tmp_path) == ["a/v.tif", "a/w.webp", "a/x.JPG", "a/y.Jpeg", "a/z.PnG"]


def test_get_image_files_skips_hidden(tmp_path):
    touch_image(tmp_path / "cat" / "1.png")
    touch_image(tmp_path / ".centaur" / "thumb.png")  # our own cache
    touch_image(tmp_path / "cat" / ".ipynb_checkpoints" / "2.png")
    touch_image(tmp_path / "cat" / "._1.png")  # macOS AppleDouble metadata beside the real file
    touch_image(tmp_path / "cat" / ".hidden.png")
    assert names(get_image_files(tmp_path), tmp_path) == ["cat/1.png"]


def test_get_image_files_inside_a_hidden_root(tmp_path):
    # only names below the given folder count: data kept under ~/.cache/... still works
    root = tmp_path / ".cache" / "data"
    touch_image(root / "cat" / "1.png")
    assert names(get_image_files(root), root) == ["cat/1.png"]


def test_get_image_files_follows_symlinked_folder_without_looping(tmp_path):
    outside = tmp_path / "elsewhere"
    touch_image(outside / "1.png")
    root = tmp_path / "data"
    root.mkdir()
    try:
        os.symlink(outside, root / "cat")
        os.symlink(root, root / "cat" / "loop")  # a cycle must not recurse forever
    except OSError:
        pytest.skip("symlinks not supported here")
    assert "cat/1.png" in names(get_image_files(root), root)


def test_get_image_files_bad_paths(tmp_path):
    with pytest.raises(CentaurError, match="does not exist"):
        get_image_files(tmp_path / "nope")
    image = touch_image(tmp_path / "one.png")
    with pytest.raises(CentaurError, match="is a file, not a folder"):
        get_image_files(image)


def test_get_image_files_folders_option(tmp_path):
    for rel in ["train/cat/1.png", "valid/cat/2.png", "test/cat/3.png"]:
        touch_image(tmp_path / rel)
    got = names(get_image_files(tmp_path, folders=["train", "valid"]), tmp_path)
    assert got == ["train/cat/1.png", "valid/cat/2.png"]
    # a single name is one folder, not a list of letters
    assert names(get_image_files(tmp_path, folders="test"), tmp_path) == ["test/cat/3.png"]
    with pytest.raises(CentaurError, match="no subfolder 'val'.*Did you mean: 'valid'"):
        get_image_files(tmp_path, folders=["train", "val"])


def test_get_image_files_empty_folder(tmp_path):
    assert get_image_files(tmp_path) == []


# --- labels from paths ----------------------------------------------------------------------

def test_parent_label():
    assert parent_label("data/cat/1.jpg") == "cat"
    assert parent_label(Path("/abs/dog/x.png")) == "dog"


def test_regex_labeller_match_and_groups():
    assert RegexLabeller(r"^([a-z_]+)_\d+")(Path("great_pyrenees_12.jpg")) == "great_pyrenees"
    assert RegexLabeller(r"\d+")("pic_042.png") == "042"  # no group: the whole match
    # on="path" sees the folders too
    assert RegexLabeller(r"/(\w+)/[^/]+$", on="path")(Path("/d/tabby/1.jpg")) == "tabby"


def test_regex_labeller_errors():
    with pytest.raises(CentaurError, match=r"does not match 'IMG_1.jpg'"):
        RegexLabeller(r"^([a-z]+)_\d+")(Path("x/IMG_1.jpg"))
    with pytest.raises(CentaurError, match="not a valid regular expression"):
        RegexLabeller(r"([a-z]+")
    with pytest.raises(CentaurError, match="Did you mean: 'path'"):
        RegexLabeller(r"(x)", on="paths")


# --- tables ---------------------------------------------------------------------------------

def test_col_reader_plain_prefix_suffix():
    row = {"file": "a", "label": "cat"}
    assert ColReader("label")(row) == "cat"
    assert ColReader("file", prefix="images/", suffix=".jpg")(row) == "images/a.jpg"
    series = pd.Series(row)  # a pandas row works like a dict
    assert ColReader("file", prefix="p/")(series) == "p/a"


def test_col_reader_label_delim():
    read = ColReader("tags", label_delim=",")
    assert read({"tags": "cat, dog,,bird "}) == ["cat", "dog", "bird"]
    assert read({"tags": float("nan")}) == []  # an empty CSV cell
    assert read({"tags": None}) == []
    assert read({"tags": ["a", "b"]}) == ["a", "b"]
    assert ColReader("tags", label_delim=" ")({"tags": "a  b"}) == ["a", "b"]


def test_col_reader_unknown_column_suggests():
    with pytest.raises(CentaurError) as info:
        ColReader("lable")({"file": "a.jpg", "label": "cat"})
    message = str(info.value)
    assert "'lable'" in message and "'file', 'label'" in message and "Did you mean: 'label'" in message


def test_is_missing():
    assert is_missing(None) and is_missing(float("nan")) and is_missing(pd.NaT)
    assert not is_missing("") and not is_missing("cat") and not is_missing(0) and not is_missing([1])


def test_read_table(tmp_path):
    df = pd.DataFrame({"file": ["a.png"], "label": ["x"]})
    assert read_table(df) is df
    df.to_csv(tmp_path / "t.csv", index=False)
    assert read_table(tmp_path / "t.csv").to_dict("records") == [{"file": "a.png", "label": "x"}]
    with pytest.raises(CentaurError, match="does not exist"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_bytes(b"")
    with pytest.raises(CentaurError, match="could not read table"):
        read_table(tmp_path / "bad.csv")
