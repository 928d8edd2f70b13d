"""End-to-end tests of the DataBlock recipe, as a user meets it: folders, CSVs, bad files, batches."""
import io
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.core.images import open_image
from centaur.core.seed import set_seed
from centaur.data.augment import aug_transforms
from centaur.data.block import DataBlock
from centaur.data.blocks import CategoryBlock, ImageBlock, MultiCategoryBlock, RegressionBlock
from centaur.data.getters import ColReader, get_image_files, parent_label
from centaur.data.splitters import FolderSplitter, RandomSplitter
from centaur.data.transforms import Resize

# Each class is a colour, so a batch can be checked against its labels: the dominant channel.
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}
CHANNEL = {"red": 0, "green": 1, "blue": 2}
SIZES = [(20, 16), (16, 24), (30, 18), (18, 18), (40, 12), (12, 36)]  # PIL (width, height)


def make_image(path, color, size=(20, 16), seed=0, fmt="PNG"):
    """A noisy solid-colour RGB image at path (folders created)."""
    w, h = size
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(color) + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, format=fmt)
    return path


def make_folder(root, classes=("red", "green", "blue"), n=6, size=None):
    """root/<class>/<i>.png, n per class, of varied sizes unless `size` is given."""
    files = []
    for c, name in enumerate(classes):
        for i in range(n):
            files.append(make_image(root / name / f"{i}.png", COLORS[name], size or SIZES[i % len(SIZES)],
                                    seed=100 * c + i))
    return files


def folder_block(**kwargs):
    options = dict(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                   splitter=RandomSplitter(0.25, seed=0), item_tfms=Resize(16))
    options.update(kwargs)
    return DataBlock(**options)


def dominant(xb):
    """The strongest channel of each image in a batch (B, 3, H, W) -> (B,)."""
    return xb.mean(dim=(2, 3)).argmax(dim=1)


@pytest.fixture
def warnings_seen():
    """Messages logged to the 'centaur' logger (it does not propagate, so caplog alone misses them)."""
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("centaur")
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


# --- a folder of class subfolders -----------------------------------------------------------

def test_folder_end_to_end_batches_and_labels(tmp_path):
    make_folder(tmp_path / "data")
    dls = folder_block().dataloaders(tmp_path / "data", bs=4, seed=0)
    assert dls.vocab == ["blue", "green", "red"]
    assert len(dls.train_ds) + len(dls.valid_ds) == 18 and len(dls.valid_ds) == 4
    n_train_batches = 0
    for xb, yb in dls.train:
        n_train_batches += 1
        assert xb.shape == (4, 3, 16, 16) and xb.dtype == torch.float32
        assert xb.is_contiguous(memory_format=torch.channels_last)
        assert 0 <= xb.min() and xb.max() <= 1
        assert yb.dtype == torch.int64 and yb.shape == (4,)
        expected = torch.tensor([CHANNEL[dls.vocab[y]] for y in yb])
        assert torch.equal(dominant(xb), expected)  # every image carries its own label
    assert n_train_batches == len(dls.train) == 14 // 4  # the last partial batch is dropped
    valid_labels = []
    for xb, yb in dls.valid:
        assert xb.is_contiguous(memory_format=torch.channels_last)
        valid_labels += [dls.vocab[y] for y in yb]
        assert torch.equal(dominant(xb), torch.tensor([CHANNEL[dls.vocab[y]] for y in yb]))
    assert valid_labels == [parent_label(x) for x in dls.valid_ds.xs]  # in order, none dropped


def test_one_batch_with_augmentation(tmp_path):
    make_folder(tmp_path / "data", n=4)
    set_seed(0)
    dls = folder_block(batch_tfms=aug_transforms()).dataloaders(tmp_path / "data", bs=4, seed=0)
    xb, yb = dls.train.one_batch()
    assert xb.shape == (4, 3, 16, 16) and xb.is_contiguous(memory_format=torch.channels_last)
    dls.set_normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    xb, _ = dls.valid.one_batch()
    assert xb.min() >= -1 and xb.max() <= 1 and xb.min() < 0  # normalized


def test_source_as_list_of_files(tmp_path):
    files = make_folder(tmp_path / "data", n=4)
    dls = folder_block(get_items=None).dataloaders([str(f) for f in files], bs=4)
    assert len(dls.train_ds) + len(dls.valid_ds) == 12


def test_train_valid_folders_under_a_folder_called_valid(tmp_path):
    root = tmp_path / "valid" / "project"  # the FolderSplitter must look at the nearest folders
    make_folder(root / "train", n=4)
    make_folder(root / "valid", n=2)
    dls = folder_block(splitter=FolderSplitter()).dataloaders(root, bs=4)
    assert len(dls.train_ds) == 12 and len(dls.valid_ds) == 6
    assert all("/train/" in str(x) for x in dls.train_ds.xs)


# --- bad input ------------------------------------------------------------------------------

def test_bad_files_are_listed_and_skipped(tmp_path, warnings_seen):
    root = tmp_path / "data"
    make_folder(root, classes=("red", "green"), n=4)
    (root / "red" / "empty.jpg").write_bytes(b"")
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
    (root / "red" / "cut.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (root / "green" / "notes.jpg").write_text("this is not a picture")
    dls = folder_block().dataloaders(root, bs=4, seed=0)
    assert len(dls.train_ds) + len(dls.valid_ds) == 8  # every good image kept
    skipped = sorted(str(x).rsplit("/", 1)[-1] for x, _ in dls.train_ds.skipped)
    assert skipped == ["cut.png", "empty.jpg", "notes.jpg"]
    message = "\n".join(warnings_seen)
    assert "skipped 3 unreadable image(s)" in message
    assert "centaur verify FOLDER" in message
    assert "empty.jpg" in message and "cut.png" in message and "notes.jpg" in message
    assert "empty file" in message and "truncated" in message and "not an image" in message
    for _ in dls.train:  # and training data is still built
        pass


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CentaurError, match="no images found"):
        folder_block().dataloaders(tmp_path / "empty")
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "readme.txt").write_text("hi")
    with pytest.raises(CentaurError, match="no images found"):
        folder_block().dataloaders(tmp_path / "texts")


def test_missing_path(tmp_path):
    with pytest.raises(CentaurError, match="does not exist"):
        folder_block().dataloaders(tmp_path / "nowhere")
    with pytest.raises(CentaurError, match="does not exist"):
        folder_block().dataloaders(tmp_path / "labels.csv")


def test_all_images_unreadable(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(4):
            (tmp_path / name / f"{i}.png").write_bytes(b"")
    with pytest.raises(CentaurError, match="none of the 8 images"):
        folder_block().dataloaders(tmp_path)


def test_one_class(tmp_path):
    make_folder(tmp_path / "data", classes=("red",), n=5)
    with pytest.raises(CentaurError, match="only one class.*'red'"):
        folder_block().dataloaders(tmp_path / "data")


def test_class_with_one_image_warns(tmp_path, warnings_seen):
    root = tmp_path / "data"
    make_folder(root, classes=("red", "green"), n=4)
    make_image(root / "blue" / "only.png", COLORS["blue"])
    dls = folder_block().dataloaders(root, bs=4)
    assert any("single image" in w and "'blue'" in w for w in warnings_seen)
    assert len(dls.train_ds) >= 6


def test_validation_label_unseen_in_training(tmp_path, warnings_seen):
    root = tmp_path / "data"
    make_folder(root / "train", classes=("red", "green"), n=3)
    make_folder(root / "valid", classes=("red", "green", "blue"), n=2)
    dls = folder_block(splitter=FolderSplitter()).dataloaders(root, bs=4)
    assert dls.vocab == ["green", "red"] and len(dls.valid_ds) == 4
    assert any("no training example" in w and "'blue'" in w for w in warnings_seen)


@pytest.mark.parametrize("bs", [0, -1, "4", 2.0, True])
def test_bad_batch_size(tmp_path, bs):
    with pytest.raises(CentaurError, match="batch size"):
        folder_block().dataloaders(tmp_path, bs=bs)


def test_different_sizes_without_item_tfms(tmp_path):
    make_folder(tmp_path / "data", n=3)
    with pytest.raises(CentaurError, match="different sizes.*Resize"):
        folder_block(item_tfms=None).dataloaders(tmp_path / "data", bs=4)
    make_folder(tmp_path / "same", n=3, size=(8, 8))  # all one size: no resize needed
    xb, _ = folder_block(item_tfms=None).dataloaders(tmp_path / "same", bs=4).train.one_batch()
    assert xb.shape == (4, 3, 8, 8)


def test_image_modes_all_load(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    gradient = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (12, 1))  # (12, 24)
    Image.fromarray(gradient, "L").save(root / "a" / "gray.png")
    Image.new("RGBA", (24, 12), (255, 0, 0, 128)).save(root / "a" / "rgba.png")
    Image.fromarray(gradient, "L").convert("P").save(root / "a" / "palette.gif")
    Image.fromarray(gradient.astype(np.uint16) * 256).save(root / "a" / "sixteen.png")  # I;16
    Image.new("CMYK", (24, 12), (0, 255, 255, 0)).save(root / "b" / "cmyk.jpg")
    Image.new("LA", (24, 12), (100, 200)).save(root / "b" / "la.png")
    Image.new("1", (24, 12), 1).save(root / "b" / "bilevel.bmp")
    make_image(root / "b" / "rgb.jpg", COLORS["blue"], fmt="JPEG")
    dls = folder_block(splitter=RandomSplitter(0.25, seed=1)).dataloaders(root, bs=2)
    assert dls.train_ds.skipped == []
    assert len(dls.train_ds) + len(dls.valid_ds) == 8
    for dl in (dls.train, dls.valid):
        for xb, _ in dl:
            assert xb.shape[1:] == (3, 16, 16)
    assert Image.open(root / "a" / "sixteen.png").mode.startswith("I")


# --- tables ---------------------------------------------------------------------------------

def make_table_data(root, n=4):
    """root/imgs/<colour><i>.png and the rows (file relative to root, label)."""
    rows = []
    for name in ("red", "green", "blue"):
        for i in range(n):
            make_image(root / "imgs" / f"{name}{i}.png", COLORS[name], SIZES[i], seed=i)
            rows.append({"file": f"imgs/{name}{i}.png", "label": name})
    return rows


def table_block(**kwargs):
    options = dict(blocks=(ImageBlock, CategoryBlock), get_x=ColReader("file"), get_y=ColReader("label"),
                   splitter=RandomSplitter(0.25, seed=0), item_tfms=Resize(16))
    options.update(kwargs)
    return DataBlock(**options)


def check_colour_labels(dls):
    for dl in (dls.train, dls.valid):
        for xb, yb in dl:
            assert torch.equal(dominant(xb), torch.tensor([CHANNEL[dls.vocab[y]] for y in yb]))


def test_a_file_listed_twice_is_used_once_and_never_on_both_sides(tmp_path, warnings_seen):
    root = tmp_path / "set"
    rows = make_table_data(root)
    table = pd.DataFrame(rows + rows)  # every row twice, as a careless concatenation does
    table.to_csv(root / "labels.csv", index=False)
    dls = table_block().dataloaders(root / "labels.csv", bs=4, seed=0)
    train, valid = set(map(str, dls.train_ds.xs)), set(map(str, dls.valid_ds.xs))
    assert len(train) + len(valid) == len(rows) and not train & valid
    assert any("already listed with the same label" in w for w in warnings_seen)
    clash = pd.DataFrame(rows + [{**rows[0], "label": "green" if rows[0]["label"] != "green" else "red"}])
    clash.to_csv(root / "clash.csv", index=False)
    with pytest.raises(CentaurError, match="listed with different labels"):
        table_block().dataloaders(root / "clash.csv", bs=4, seed=0)


def test_csv_source_paths_relative_to_the_csv(tmp_path, monkeypatch):
    root = tmp_path / "set"
    pd.DataFrame(make_table_data(root)).to_csv(root / "labels.csv", index=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # run from another folder
    dls = table_block().dataloaders(root / "labels.csv", bs=4, seed=0)
    assert dls.vocab == ["blue", "green", "red"]
    assert len(dls.train_ds) + len(dls.valid_ds) == 12
    assert all(x.is_absolute() and x.is_file() for x in dls.train_ds.xs + dls.valid_ds.xs)
    check_colour_labels(dls)
    # the same with names only and a prefix; a str path to the CSV works too
    names = pd.read_csv(root / "labels.csv")
    names["file"] = names["file"].str.replace("imgs/", "")
    names.to_csv(root / "names.csv", index=False)
    dls = table_block(get_x=ColReader("file", prefix="imgs/")).dataloaders(str(root / "names.csv"), bs=4)
    assert len(dls.train_ds) + len(dls.valid_ds) == 12


def test_csv_missing_labels_are_left_out(tmp_path, warnings_seen):
    rows = make_table_data(tmp_path)
    rows[0]["label"] = None
    rows[5]["label"] = None
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    dls = table_block().dataloaders(tmp_path / "labels.csv", bs=4)
    assert "nan" not in dls.vocab
    assert len(dls.train_ds) + len(dls.valid_ds) == 10
    assert any("2 item(s) have no label" in w and "red0.png" in w for w in warnings_seen)


def test_dataframe_source(tmp_path):
    rows = make_table_data(tmp_path)
    df = pd.DataFrame([{**r, "file": str(tmp_path / r["file"])} for r in rows])
    dls = table_block().dataloaders(df, bs=4, seed=0)
    assert dls.train_ds.source == "DataFrame"
    check_colour_labels(dls)


def test_table_without_get_x_explains(tmp_path):
    df = pd.DataFrame(make_table_data(tmp_path))
    with pytest.raises(CentaurError, match=r"get_x=ColReader\('file'\)"):
        table_block(get_x=None).dataloaders(df)
    with pytest.raises(CentaurError, match="Did you mean: 'label'"):
        table_block(get_y=ColReader("labels")).dataloaders(df)
    with pytest.raises(CentaurError, match="no get_y"):
        table_block(get_y=None).dataloaders(df)


def test_multi_label_datablock(tmp_path):
    rows = make_table_data(tmp_path)
    for i, r in enumerate(rows):
        r["tags"] = r["label"] + (" bright" if i % 2 else "")
    df = pd.DataFrame(rows)
    block = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=ColReader("file"),
                      get_y=ColReader("tags", label_delim=" "), splitter=RandomSplitter(0.25, seed=0),
                      item_tfms=Resize(16))
    df["file"] = [str(tmp_path / f) for f in df["file"]]
    dls = block.dataloaders(df, bs=4)
    assert dls.vocab == ["blue", "bright", "green", "red"]
    xb, yb = dls.train.one_batch()
    assert yb.shape == (4, 4) and yb.dtype == torch.float32
    assert set(yb.unique().tolist()) <= {0.0, 1.0} and (yb.sum(1) >= 1).all()
    colour_cols = torch.tensor([0, 2, 3])  # blue, green, red in the vocab
    colour_of = {0: 2, 1: 1, 2: 0}  # vocab position among colours -> channel
    for x_dom, y in zip(dominant(xb), yb):
        assert colour_of[int(y[colour_cols].argmax())] == int(x_dom)
    png = dls.show_batch(tmp_path / "multi.png")
    Image.open(png).verify()


def test_regression_datablock(tmp_path):
    rows = make_table_data(tmp_path)
    df = pd.DataFrame([{"file": str(tmp_path / r["file"]), "red": COLORS[r["label"]][0] / 255} for r in rows])
    block = DataBlock(blocks=(ImageBlock, RegressionBlock), get_x=ColReader("file"), get_y=ColReader("red"),
                      splitter=RandomSplitter(0.25, seed=0), item_tfms=Resize(16))
    dls = block.dataloaders(df, bs=4)
    assert dls.vocab is None
    xb, yb = dls.train.one_batch()
    assert yb.shape == (4, 1) and yb.dtype == torch.float32
    torch.testing.assert_close(yb[:, 0], xb[:, 0].mean(dim=(1, 2)), atol=0.05, rtol=0)
    png = dls.show_batch(tmp_path / "regression.png")
    Image.open(png).verify()
    df["red"] = df["red"].astype(object)
    df.loc[3, "red"] = "bright"  # one bad target stops us before training, naming the file
    with pytest.raises(CentaurError, match=r"1 item\(s\) have labels that cannot be used.*'bright' is not a number"):
        block.dataloaders(df, bs=4)


# --- summary --------------------------------------------------------------------------------

def test_summary_prints_each_step(tmp_path, capsys):
    make_folder(tmp_path / "data", n=3)
    folder_block(batch_tfms=aug_transforms()).summary(tmp_path / "data")
    out = capsys.readouterr().out
    for step in ("get_items: 9 items", "split: 7 train, 2 valid", "get_x:", "get_y: '", "open image: ",
                 "Resize: 16x16", "to tensor: (3, 16, 16) torch.uint8", "encode y:", "vocab: ['blue', 'green', 'red']",
                 "collate: (4, 3, 16, 16)", "BatchAugment: (4, 3, 16, 16)", "every step worked"):
        assert step in out, step


def test_summary_names_the_broken_step(tmp_path, capsys):
    make_folder(tmp_path / "data", n=3)

    def broken_label(path):
        return {"cat": 1}[path.parent.name]  # a KeyError for every item

    with pytest.raises(CentaurError, match="the step 'get_y' failed.*KeyError"):
        folder_block(get_y=broken_label).summary(tmp_path / "data")
    out = capsys.readouterr().out
    assert "get_x:" in out and "the step 'get_y' failed" in out
    # building the data names the step and the item too, and points at summary()
    with pytest.raises(CentaurError, match=r"get_y failed on .*\.png.*KeyError.*summary"):
        folder_block(get_y=broken_label).dataloaders(tmp_path / "data")


def test_summary_finds_missing_resize(tmp_path, capsys):
    make_folder(tmp_path / "data", n=3)
    with pytest.raises(CentaurError, match="the step 'collate' failed.*different sizes"):
        folder_block(item_tfms=None).summary(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CentaurError, match="the step 'get_items' failed.*no images"):
        folder_block().summary(tmp_path / "empty")
    assert "the step 'get_items' failed" in capsys.readouterr().out


# --- loaders --------------------------------------------------------------------------------

def test_show_batch_writes_a_png(tmp_path):
    make_folder(tmp_path / "data", n=3)
    dls = folder_block(batch_tfms=aug_transforms()).dataloaders(tmp_path / "data", bs=4)
    for train in (True, False):
        path = dls.show_batch(tmp_path / "out" / f"batch_{train}.png", train=train)
        assert path.is_file()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size[0] > 50
            img.load()
    png = dls.show_batch()  # in a notebook: shown inline
    assert png[:4] == b"\x89PNG" and png._repr_png_() == bytes(png)


def test_test_dl_takes_a_list_or_one_folder(tmp_path):
    files = make_folder(tmp_path / "data", n=3)
    dls = folder_block().dataloaders(tmp_path / "data", bs=4)
    assert len(dls.test_dl(files).dataset) == len(dls.test_dl(tmp_path / "data").dataset) == 9
    assert len(dls.test_dl(str(files[0])).dataset) == 1


def epoch_order(dls):
    return [xb.sum(dim=(1, 2, 3)).tolist() for xb, _ in dls.train]


def test_shuffle_reproducible_with_seed(tmp_path):
    make_folder(tmp_path / "data", n=6, size=(12, 12))
    block = folder_block(item_tfms=Resize(8, "squish"))  # deterministic items: only the order varies
    first = block.dataloaders(tmp_path / "data", bs=4, seed=1)
    again = block.dataloaders(tmp_path / "data", bs=4, seed=1)
    other = block.dataloaders(tmp_path / "data", bs=4, seed=2)
    order = epoch_order(first)
    assert order == epoch_order(again)
    assert order != epoch_order(other)
    second = epoch_order(first)
    assert second != order  # each epoch is a new permutation, also reproducible
    assert epoch_order(again) == second


def test_shuffle_without_seed_follows_set_seed(tmp_path):
    make_folder(tmp_path / "data", n=6, size=(12, 12))
    block = folder_block(item_tfms=Resize(8, "squish"))
    orders = []
    for seed in (3, 3, 4):
        set_seed(seed)
        orders.append(epoch_order(block.dataloaders(tmp_path / "data", bs=4)))
    assert orders[0] == orders[1] and orders[0] != orders[2]


def test_validation_tensors_stable_and_as_predicted(tmp_path):
    # bigger than twice the target size, so training images are cached shrunk
    make_folder(tmp_path / "data", n=4, size=(90, 60))
    block = folder_block(item_tfms=Resize(16, "crop"))
    dls = block.dataloaders(tmp_path / "data", bs=4)
    first = [xb.clone() for xb, _ in dls.valid]
    second = [xb.clone() for xb, _ in dls.valid]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # validation data is made exactly as a Predictor makes its input: full image, centre crop
    resize = Resize(16, "crop")
    expected = torch.stack([ImageBlock.to_tensor(resize(open_image(x), train=False)) for x in dls.valid_ds.xs])
    assert torch.equal(torch.cat(first), expected.float() / 255)
    # with no cache at all the tensors are the same
    uncached = block.dataloaders(tmp_path / "data", bs=4, cache_bytes=0)
    assert all(torch.equal(a, b) for a, b in zip(first, (xb for xb, _ in uncached.valid)))


def test_training_crops_vary_between_epochs(tmp_path):
    make_folder(tmp_path / "data", n=4, size=(40, 16))
    dls = folder_block(item_tfms=Resize(16, "crop")).dataloaders(tmp_path / "data", bs=4)
    x0 = dls.train_ds[0][0]
    assert any(not torch.equal(x0, dls.train_ds[0][0]) for _ in range(10))  # random crops, not cached


def test_summary_skips_an_unreadable_image_like_dataloaders(tmp_path, capsys):
    root = tmp_path / "data"
    make_folder(root, classes=("red", "green"), n=3)
    (root / "green" / "0.png").write_bytes(b"")  # the first training items include it
    (root / "red" / "0.png").write_text("text")
    folder_block(splitter=RandomSplitter(0.2, seed=0)).summary(root)
    out = capsys.readouterr().out
    assert "skipped cannot use image" in out and "every step worked" in out
    for path in root.rglob("*.png"):
        path.write_bytes(b"")
    with pytest.raises(CentaurError, match="the step 'open image' failed.*empty file"):
        folder_block().summary(root)


def test_bad_blocks_and_leaky_splitter(tmp_path):
    make_folder(tmp_path / "data", n=3)
    with pytest.raises(CentaurError, match="blocks must be a pair"):
        folder_block(blocks=(ImageBlock,)).dataloaders(tmp_path / "data")

    def leaky(items):
        return list(range(len(items))), [0, 1]

    with pytest.raises(CentaurError, match="2 item.*in both training and validation"):
        folder_block(splitter=leaky).dataloaders(tmp_path / "data")
    with pytest.raises(CentaurError, match="the step 'split' failed"):
        folder_block(splitter=leaky).summary(tmp_path / "data")


def test_image_over_the_pixel_limit_is_skipped(tmp_path, warnings_seen):
    root = tmp_path / "data"
    make_folder(root, classes=("red", "green"), n=3, size=(10, 10))
    make_image(root / "red" / "huge.png", COLORS["red"], size=(40, 40))  # 1,600 pixels
    dls = folder_block(blocks=(ImageBlock(max_pixels=500), CategoryBlock)).dataloaders(root, bs=2)
    assert [x.name for x, _ in dls.train_ds.skipped] == ["huge.png"]
    assert any("huge.png" in w and "decompression bomb" in w for w in warnings_seen)


@pytest.mark.parametrize("options, message", [
    (dict(item_tfms=128), r"not a transform; for a size use Resize\(128\)"),
    (dict(splitter=0.2), "splitter must be a function"),
    (dict(batch_tfms=aug_transforms), r"call it to make the transform, e.g. batch_tfms=aug_transforms\(\)"),
    (dict(blocks=("image", "category")), "blocks are classes such as ImageBlock"),
])
def test_a_recipe_of_the_wrong_kind_is_named_before_any_image_is_read(tmp_path, options, message):
    make_folder(tmp_path, n=2)
    with pytest.raises(CentaurError, match=message):
        folder_block(**options).dataloaders(tmp_path, bs=2)


def test_batches_are_augmented_where_the_model_trains(tmp_path):
    # PyTorch's meta device stands in for a GPU: no data, but every tensor must be put on it
    make_folder(tmp_path / "data", n=3)
    dls = folder_block(batch_tfms=aug_transforms()).dataloaders(tmp_path / "data", bs=4)
    assert dls.to("meta") is dls
    for dl in (dls.train, dls.valid, dls.test_dl(tmp_path / "data")):
        xb, yb = dl.one_batch()
        assert xb.device.type == "meta" and xb.dtype == torch.float32 and xb.shape[1:] == (3, 16, 16)
    dls.to("cpu")
    xb, _ = dls.train.one_batch()
    assert xb.device.type == "cpu" and torch.isfinite(xb).all()
