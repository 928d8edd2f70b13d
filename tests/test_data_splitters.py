"""Tests for centaur.data.splitters: which items train and which validate."""
import random

import pandas as pd
import pytest

from centaur.core.errors import CentaurError
from centaur.data.splitters import DateSplitter, FolderSplitter, FuncSplitter, GroupSplitter, RandomSplitter


def check_partition(train, valid, n):
    """Disjoint and complete lists of int indices."""
    assert set(train).isdisjoint(valid)
    assert sorted(train + valid) == list(range(n))
    assert all(isinstance(i, int) for i in train + valid)


# --- RandomSplitter -------------------------------------------------------------------------

def test_random_splitter_fraction_disjoint_complete():
    train, valid = RandomSplitter(0.2, seed=3)(list(range(100)))
    check_partition(train, valid, 100)
    assert len(valid) == 20
    train, valid = RandomSplitter(0.25, seed=0)(list("abcdefgh"))
    check_partition(train, valid, 8)
    assert len(valid) == 2


def test_random_splitter_seeded_reproducible():
    items = list(range(50))
    assert RandomSplitter(0.3, seed=7)(items) == RandomSplitter(0.3, seed=7)(items)
    assert RandomSplitter(0.3, seed=7)(items) != RandomSplitter(0.3, seed=8)(items)
    # not the first items: the split is random, not a slice
    assert RandomSplitter(0.3, seed=7)(items)[1] != list(range(15))


@pytest.mark.parametrize("valid_pct", [0, 1, 1.5, -0.1, "0.2", None, True, float("nan")])
def test_bad_valid_pct(valid_pct):
    for splitter in (RandomSplitter(valid_pct), GroupSplitter("g", valid_pct), DateSplitter("d", valid_pct)):
        with pytest.raises(CentaurError, match="valid_pct must be between 0 and 1"):
            splitter([{"g": i, "d": "2020-01-01"} for i in range(4)])


# --- FolderSplitter -------------------------------------------------------------------------

def test_folder_splitter_train_valid_layout(tmp_path):
    items = [tmp_path / "train/cat/1.jpg", tmp_path / "valid/cat/2.jpg", tmp_path / "train/dog/3.jpg",
             tmp_path / "test/dog/4.jpg", tmp_path / "valid/dog/5.jpg"]
    train, valid = FolderSplitter()(items)
    assert train == [0, 2] and valid == [1, 4]  # test/ is in neither
    train, valid = FolderSplitter("training", "val")(["a/training/x.png", "a/val/y.png"])
    assert (train, valid) == ([0], [1])


def test_folder_splitter_nearest_folder_decides():
    # the project lives under a folder that happens to be called "valid"
    items = ["/home/ann/valid/project/train/cat/1.jpg", "/home/ann/valid/project/valid/cat/2.jpg"]
    assert FolderSplitter()(items) == ([0], [1])
    # a file *named* valid is not a folder
    assert FolderSplitter()(["d/train/valid", "d/valid/a.jpg"]) == ([0], [1])


def test_folder_splitter_missing_folder_suggests():
    with pytest.raises(CentaurError, match="no item is inside a 'valid' folder.*Did you mean: 'val'"):
        FolderSplitter()(["d/train/cat/1.jpg", "d/val/cat/2.jpg"])
    with pytest.raises(CentaurError, match="no item is inside a 'train' folder"):
        FolderSplitter()(["d/valid/cat/1.jpg", "d/valid/cat/2.jpg"])
    with pytest.raises(CentaurError, match="needs file paths"):
        FolderSplitter()([{"file": "a"}])


# --- FuncSplitter ---------------------------------------------------------------------------

def test_func_splitter():
    items = [f"img_{i}.jpg" for i in range(10)]
    train, valid = FuncSplitter(lambda name: int(name[4]) % 3 == 0)(items)
    assert valid == [0, 3, 6, 9] and train == [1, 2, 4, 5, 7, 8]


# --- GroupSplitter --------------------------------------------------------------------------

def test_group_splitter_never_splits_a_group():
    rng = random.Random(0)
    rows = [{"patient": f"p{rng.randrange(12)}", "i": i} for i in range(120)]
    train, valid = GroupSplitter("patient", valid_pct=0.25, seed=1)(rows)
    check_partition(train, valid, len(rows))
    train_groups = {rows[i]["patient"] for i in train}
    valid_groups = {rows[i]["patient"] for i in valid}
    assert train_groups.isdisjoint(valid_groups)
    assert len(valid_groups) == 3  # 25% of the 12 groups
    assert GroupSplitter("patient", 0.25, seed=1)(rows) == (train, valid)  # seeded


def test_group_splitter_with_a_function_and_too_few_groups():
    items = [f"farm{i % 4}/cow{i}.jpg" for i in range(20)]
    train, valid = GroupSplitter(lambda p: p.split("/")[0], valid_pct=0.5, seed=0)(items)
    assert {items[i][:5] for i in train}.isdisjoint({items[i][:5] for i in valid})
    with pytest.raises(CentaurError, match="at least 2 groups"):
        GroupSplitter(lambda p: "one")(items)


# --- DateSplitter ---------------------------------------------------------------------------

def test_date_splitter_latest_validate():
    dates = list(pd.date_range("2021-01-01", periods=50, freq="D").strftime("%Y-%m-%d"))
    rows = [{"date": d} for d in dates]
    random.Random(0).shuffle(rows)  # the table is not in date order
    train, valid = DateSplitter("date", valid_pct=0.2)(rows)
    check_partition(train, valid, 50)
    assert len(valid) == 10
    assert max(rows[i]["date"] for i in train) < min(rows[i]["date"] for i in valid)
    assert min(rows[i]["date"] for i in valid) == "2021-02-10"


def test_date_splitter_ties_stay_together():
    # 5 days x 4 items: a 30% cut falls inside a day; that whole day validates
    rows = [{"when": pd.Timestamp("2022-03-01") + pd.Timedelta(days=d)} for d in range(5) for _ in range(4)]
    train, valid = DateSplitter(lambda r: r["when"], valid_pct=0.3)(rows)
    check_partition(train, valid, 20)
    assert {rows[i]["when"] for i in train}.isdisjoint({rows[i]["when"] for i in valid})
    assert len(valid) == 8


def test_date_splitter_bad_dates():
    with pytest.raises(CentaurError, match="1 item.*unreadable date.*'not a date'"):
        DateSplitter("d")([{"d": "2020-01-01"}, {"d": "not a date"}, {"d": "2020-01-03"}])
    with pytest.raises(CentaurError, match="more than one date"):
        DateSplitter("d")([{"d": "2020-01-01"}] * 5)


def test_group_and_date_column_errors():
    rows = [{"patient": "a", "date": "2020-01-01"}, {"patient": "b", "date": "2020-01-02"}]
    with pytest.raises(CentaurError, match="cannot read 'patinet'.*Did you mean: 'patient'"):
        GroupSplitter("patinet")(rows)
    with pytest.raises(CentaurError, match="cannot read 'day'"):
        DateSplitter("day")(rows)
    with pytest.raises(CentaurError, match="give a function of the item"):
        GroupSplitter("patient")(["a/1.jpg", "b/2.jpg"])
