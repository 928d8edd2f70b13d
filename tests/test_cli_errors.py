"""User mistakes at the command line: exit status 2 and one clear `error:` line, never a traceback."""
import json
import re

import pytest

from centaur.cli import main
from centaur.core.errors import CentaurError

from conftest import EMOJI, copy_emoji, run_centaur, write_bad_files


def fails_with(capsys, argv, *expected):
    """Run the CLI in-process; assert status 2, one stderr line `error: ...` holding `expected`."""
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# --- train: the data ---

def test_train_path_that_does_not_exist(capsys, tmp_path):
    fails_with(capsys, ["train", tmp_path / "nope"], "does not exist", "nope")


def test_train_empty_folder(capsys, tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    fails_with(capsys, ["train", tmp_path / "empty"], "empty", ".jpg")


def test_train_folder_with_one_class(capsys, tmp_path):
    data = copy_emoji(tmp_path / "one", classes=("animal",), per_class=6)
    fails_with(capsys, ["train", data, "--out", tmp_path / "m"], "only one class", "'animal'")


def test_train_folder_of_only_corrupt_files_lists_them(log_to_capsys, tmp_path):
    bad = write_bad_files(tmp_path / "bad" / "cats")
    status = main(["train", str(tmp_path / "bad"), "--out", str(tmp_path / "m")])
    err = log_to_capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "none of the 4 images" in lines[-1]
    assert sum(line.startswith("error:") for line in lines) == 1
    for path in bad.values():
        assert path.name in err  # every unreadable file is named
    assert not (tmp_path / "m").exists()


def test_train_unknown_architecture_suggests_names(capsys, tiny_data, tmp_path):
    line = fails_with(capsys, ["train", tiny_data, "--arch", "lite", "--out", tmp_path / "m"],
                      "unknown architecture 'lite'", "Did you mean")
    assert "'lite0'" in line
    fails_with(capsys, ["train", tiny_data, "--arch", "resnet51", "--out", tmp_path / "m"], "'resnet50'")


def test_train_architecture_without_offline_weights(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["train", tiny_data, "--arch", "resnet18", "--out", tmp_path / "m"],
               "no offline pretrained weights", "--scratch")


@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "--epochs"),
    ("--epochs", "x", "'x'"),
    ("--epochs", "-3", "--epochs"),
    ("--freeze-epochs", "-1", "--freeze-epochs"),
    ("--valid-pct", "1.5", "between 0 and 1"),
    ("--valid-pct", "0", "--valid-pct"),
    ("--valid-pct", "lots", "fraction"),
    ("--bs", "0", "--bs"),
    ("--size", "big", "--size"),
    ("--resize", "stretch", "invalid choice"),
])
def test_train_bad_option_values(capsys, tiny_data, option, value, expected):
    fails_with(capsys, ["train", tiny_data, option, value], expected, value)


@pytest.mark.parametrize("value", ["nonsense", "-1", "0", "nan"])
def test_train_bad_learning_rate(capsys, tiny_data, tmp_path, value):
    fails_with(capsys, ["train", tiny_data, "--lr", value, "--out", tmp_path / "m"], "--lr", repr(value))


def test_train_resume_without_checkpoint(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["train", tiny_data, "--resume", "--out", tmp_path / "m"], "cannot resume", "--resume")


def test_train_weights_file_that_does_not_exist(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["train", tiny_data, "--weights", tmp_path / "w.safetensors", "--out", tmp_path / "m"],
               "w.safetensors", "does not exist")


def test_unknown_option_and_command_suggest_the_nearest(capsys, tiny_data):
    fails_with(capsys, ["train", tiny_data, "--sise", "32"], "--sise", "Did you mean", "'--size'")
    fails_with(capsys, ["trian", tiny_data], "'trian'", "Did you mean", "'train'")
    fails_with(capsys, ["predict", "m", "x.png", "--topk", "2"], "'--top-k'")


def test_csv_with_a_missing_column_suggests_the_nearest(capsys, tiny_data, tmp_path):
    rows = [f"{p.relative_to(tiny_data)},{p.parent.name}" for p in sorted(tiny_data.rglob("*.png"))]
    csv = tiny_data / "labels.csv"
    csv.write_text("file,label\n" + "\n".join(rows) + "\n")
    try:
        line = fails_with(capsys, ["train", csv, "--label-col", "lable", "--out", tmp_path / "m"],
                          "no column 'lable'", "Did you mean", "'label'")
        assert "--label-col" in line
        fails_with(capsys, ["train", csv, "--file-col", "path", "--out", tmp_path / "m"],
                   "no column 'path'", "'file'")
    finally:
        csv.unlink()


# --- predict and info ---

def test_predict_with_a_missing_model_dir(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["predict", tmp_path / "nomodel", tiny_data], "does not exist", "centaur train")


def test_predict_with_a_folder_that_is_not_a_model(capsys, tiny_data, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"")
    fails_with(capsys, ["predict", broken, tiny_data], "model.json", "damaged")
    fails_with(capsys, ["predict", tiny_data, tiny_data], "not a centaur model directory", "model.json")
    (broken / "model.json").write_text(json.dumps({"format": "something-else"}))
    fails_with(capsys, ["predict", broken, tiny_data], "not a centaur model")


def test_predict_with_damaged_weights(capsys, tiny_model, tiny_data, tmp_path):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.json").write_text((tiny_model / "model.json").read_text())
    (damaged / "model.safetensors").write_bytes(b"\x00" * 100)
    fails_with(capsys, ["predict", damaged, tiny_data], "model.safetensors", "damaged")
    # bytes overwritten in the middle: the file still parses, and its weights would predict NaN
    weights = bytearray((tiny_model / "model.safetensors").read_bytes())
    middle = len(weights) // 2
    weights[middle:middle + 4000] = b"\xff" * 4000
    (damaged / "model.safetensors").write_bytes(bytes(weights))
    fails_with(capsys, ["predict", damaged, tiny_data], "model.safetensors", "SHA-256 differs", "damaged or replaced")


def test_predict_refuses_pickles(capsys, tiny_data, tmp_path):
    (tmp_path / "export.pkl").write_bytes(b"\x80\x04K\x01.")
    fails_with(capsys, ["predict", tmp_path / "export.pkl", tiny_data], "pickle")


def test_predict_a_path_that_does_not_exist(capsys, tiny_model, tmp_path):
    fails_with(capsys, ["predict", tiny_model, tmp_path / "nothere.png"], "nothere.png", "does not exist")


def test_predict_a_folder_without_images(capsys, tiny_model, tmp_path):
    (tmp_path / "nothing").mkdir()
    fails_with(capsys, ["predict", tiny_model, tmp_path / "nothing"], "no images")


def test_info_on_a_missing_model(capsys, tmp_path):
    fails_with(capsys, ["info", tmp_path / "nomodel"], "does not exist")


def test_the_installed_command_also_exits_2_with_one_line(tmp_path):
    result = run_centaur("train", tmp_path / "nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    result = run_centaur("train", tmp_path, "--epochs", "x")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_help_is_not_an_error(capsys):
    assert main(["train", "--help"]) == 0
    assert "--resume" in capsys.readouterr().out


def test_train_output_that_is_a_file(capsys, tiny_data, tmp_path):
    (tmp_path / "taken").write_text("")
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "taken"], "is a file", "--out")


def test_train_weights_that_are_not_safetensors(capsys, tiny_data, tmp_path):
    (tmp_path / "body.pth").write_bytes(b"\x80\x04K\x01.")
    fails_with(capsys, ["train", tiny_data, "--weights", tmp_path / "body.pth", "--out", tmp_path / "m"],
               "body.pth", "safetensors")


def test_starting_over_beside_an_interrupted_run_warns(log_to_capsys, tmp_path):
    # work already done is not dropped silently: the user is told --resume exists
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "checkpoint.safetensors").write_bytes(b"x")
    data = copy_emoji(tmp_path / "one", classes=("animal",), per_class=3)  # fails right after the warning
    assert main(["train", str(data), "--out", str(tmp_path / "m")]) == 2
    err = log_to_capsys.readouterr().err
    assert "interrupted run" in err and "--resume" in err
    assert (tmp_path / "m" / "checkpoint.safetensors").read_bytes() == b"x"


def test_a_size_that_cannot_fit_in_memory_is_refused_before_loading(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", "--size", "100000"], "--size 100000",
               "4096")
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", "--size", "2048", "--bs", "32"],
               "--size 2048 with --bs 32 needs about", "GB is free", "use --bs")
    assert not (tmp_path / "m").exists()


def test_the_memory_estimate_suggests_a_batch_that_fits():
    from centaur.vision.recipes import _check_memory
    _check_memory(128, 32, available=8 * 2**30)  # the defaults fit in 8 GB
    with pytest.raises(CentaurError, match=r"use --bs (\d+) or less") as info:
        _check_memory(512, 64, available=8 * 2**30)
    fits = int(re.search(r"--bs (\d+) or less", str(info.value)).group(1))
    _check_memory(512, fits, available=8 * 2**30)


def test_an_image_model_given_a_table_says_what_it_predicts(capsys, tiny_model, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("a,b\n1,2\n")
    fails_with(capsys, ["predict", tiny_model, table], "is an image model", "table model")


def test_resume_after_a_finished_run_says_it_finished(capsys, tiny_model, tiny_data, tmp_path):
    import shutil
    done = tmp_path / "done"
    shutil.copytree(tiny_model, done)
    fails_with(capsys, ["train", tiny_data, "--out", done, "--resume"], "nothing to resume", "finished",
               "another --out")


def test_images_nested_below_their_class_folders_are_warned_about(tmp_path):
    data = tmp_path / "nested"
    for cls, batch in (("animal", "batch1"), ("face", "batch2")):
        (data / cls / batch).mkdir(parents=True)
        for f in sorted((EMOJI / cls).glob("*.png"))[:8]:
            (data / cls / batch / f.name).write_bytes(f.read_bytes())
    result = run_centaur("train", data, "--out", tmp_path / "m", "--size", "32", "--epochs", "1",
                         "--freeze-epochs", "0", "--bs", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "more than one folder deep" in result.stderr and "batch1, batch2" in result.stderr
    assert "animal, face" in result.stderr
