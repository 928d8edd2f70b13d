"""The subgroup audit: intervals that stay honest for small perfect groups, and a groups file read
strictly (a file listed twice with different groups, validation files it leaves out)."""
import numpy as np
import pandas as pd
import pytest

from centaur.core.errors import CentaurError
from centaur.interpret.subgroups import audit, read_groups

VALID = [f"valid/cow/{i}.jpg" for i in range(6)]
TRAIN = [f"train/cow/{i}.jpg" for i in range(4)]


def test_a_perfect_small_group_is_not_certain():
    from scipy.stats import binomtest
    correct = np.array([1] * 24 + [1] * 20 + [0] * 20)  # farm a: 24 of 24 right; farm b: 20 of 40
    groups = pd.DataFrame({"farm": ["a"] * 24 + ["b"] * 40})
    found = audit(correct, groups, min_size=10)
    rows = {r["values"][0]: r for r in found["rows"]}
    expected = binomtest(24, 24).proportion_ci(method="wilson")
    assert rows["a"]["accuracy"] == 1.0 and rows["a"]["ci95"] == pytest.approx([expected.low, expected.high])
    assert rows["a"]["ci95"][0] < 0.9  # a bootstrap said [1.0, 1.0]
    gap = found["gaps"][0]
    assert gap["gap"] == pytest.approx(0.5) and gap["ci95"][0] < 0.5 < gap["ci95"][1]
    # Newcombe's hybrid score interval (1998, method 10), from the two Wilson intervals
    other = binomtest(20, 40).proportion_ci(method="wilson")
    low = 0.5 - np.hypot(1 - expected.low, other.high - 0.5)
    high = 0.5 + np.hypot(expected.high - 1, 0.5 - other.low)
    assert gap["ci95"] == pytest.approx([low, high]) and 0.29 < low < 0.31


def test_absolute_errors_keep_the_bootstrap():
    errors = np.array([0.5, 1.5, 2.0, 0.1, 3.0, 0.7] * 10)
    found = audit(errors, pd.DataFrame({"shop": ["x", "y"] * 30}), min_size=10, metric="mae",
                  higher_is_better=False)
    for row in found["rows"]:
        assert row["ci95"][0] < row["mae"] < row["ci95"][1]


def _groups(tmp_path, lines):
    path = tmp_path / "groups.csv"
    path.write_text("file,farm\n" + "".join(f"{f},{g}\n" for f, g in lines))
    return path


def test_training_files_in_a_groups_file_are_passed_over_quietly(tmp_path, log_to_capsys):
    path = _groups(tmp_path, [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID + TRAIN)])
    aligned, unmatched = read_groups(path, VALID, others=TRAIN)
    assert unmatched == [] and aligned["farm"].notna().all()
    assert "no validation file" not in log_to_capsys.readouterr().err


def test_paths_written_from_elsewhere_name_the_same_files(tmp_path, log_to_capsys):
    # as run from the project folder ('data/cows/valid/...'), as absolute paths, or from the data's parent
    lines = [(f"data/cows/{f}", "north" if i % 2 else "south") for i, f in enumerate(VALID)]
    lines += [(f"/home/ann/data/cows/{f}", "east") for f in TRAIN[:2]] + [(f"cows/{f}", "west") for f in TRAIN[2:]]
    aligned, unmatched = read_groups(_groups(tmp_path, lines), VALID, others=TRAIN)
    assert unmatched == [] and list(aligned["farm"]) == ["south", "north"] * 3
    assert "no validation file" not in log_to_capsys.readouterr().err  # training files are passed over quietly
    _, unmatched = read_groups(_groups(tmp_path, lines + [("data/cows/valid/horse/0.jpg", "x")]), VALID, others=TRAIN)
    assert unmatched == [(len(lines) + 2, "data/cows/valid/horse/0.jpg")]


def test_validation_files_without_a_row_are_counted(tmp_path, log_to_capsys):
    path = _groups(tmp_path, [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID[:4])])
    aligned, _ = read_groups(path, VALID)
    assert aligned["farm"].isna().sum() == 2
    assert "2 of 6 validation files have no row" in log_to_capsys.readouterr().err
    read_groups(_groups(tmp_path, [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID[:5])]), VALID)
    assert "1 of 6 validation files has no row" in log_to_capsys.readouterr().err  # one file, one verb


def test_one_stray_row_is_counted_in_the_singular(tmp_path, log_to_capsys):
    path = _groups(tmp_path, [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID)] + [("gone.png", "x")])
    read_groups(path, VALID)
    assert "1 row of groups.csv matches no validation file and is ignored" in log_to_capsys.readouterr().err


def test_a_file_listed_twice_with_different_groups_is_refused(tmp_path):
    lines = [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID)] + [(VALID[0], "north")]
    with pytest.raises(CentaurError, match=r"different groups on lines 2, 8"):
        read_groups(_groups(tmp_path, lines), VALID)
    same_twice = [(f, "north" if i % 2 else "south") for i, f in enumerate(VALID)] + [(VALID[1], "north")]
    aligned, _ = read_groups(_groups(tmp_path, same_twice), VALID)  # the same group twice: no harm
    assert len(aligned) == 6


def test_a_groups_file_of_training_files_only_says_so(tmp_path):
    with pytest.raises(CentaurError, match="names a training file"):
        read_groups(_groups(tmp_path, [(f, "x") for f in TRAIN]), VALID, others=TRAIN)
