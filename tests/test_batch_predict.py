"""Batch prediction into CSV or Parquet chunk by chunk: interrupted (Ctrl-C or a kill) and run again,
the file equals an uninterrupted run's, row for row; worker processes change nothing; mistakes are
one-line errors."""
import io
import os
import subprocess
import sys

import pandas as pd
import pytest

from centaur.batch import predict_to_file
from centaur.cli import main
from centaur.tabular.recipes import train_tabular

from test_cli_errors import fails_with
from test_tabular_recipes import shop_table


class StopAfter:
    """on_chunk that presses Ctrl-C once `n` chunks are written."""

    def __init__(self, n):
        self.n = n

    def __call__(self, done, total):
        if done >= self.n:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    df = shop_table(n=600)
    out = root / "model"
    train_tabular(df, "sales", out, date="day", epochs=1, bs=64, layers=(16,), threads=1, progress=False)
    new = df.drop(columns=["sales"])
    new.loc[new.index[3], "shop"] = "atlantis"  # unseen: counted per row in n_unseen
    new.to_csv(root / "new.csv", index=False)
    new.to_parquet(root / "new.parquet")
    return out, root


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_images_interrupted_and_resumed_equal_an_uninterrupted_run(tiny_model, tiny_data, tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    summary = predict_to_file(tiny_model, [tiny_data], whole, chunk_size=10)
    assert summary["chunks"] == 4 and summary["rows"] == 36 and summary["resumed_chunks"] == 0
    assert not whole.with_name(whole.name + ".parts").exists()

    out = tmp_path / f"stopped{suffix}"
    with pytest.raises(KeyboardInterrupt):
        predict_to_file(tiny_model, [tiny_data], out, chunk_size=10, on_chunk=StopAfter(1))
    assert not out.exists() and len(list(out.with_name(out.name + ".parts").glob("chunk-*.json"))) == 1
    summary = predict_to_file(tiny_model, [tiny_data], out, chunk_size=10)
    assert summary["resumed_chunks"] == 1
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    pd.testing.assert_frame_equal(read(out), read(whole))
    got = read(out)
    assert list(got["file"]) == [str(p) for p in sorted(tiny_data.rglob("*.png"))]
    assert set(got.columns) == {"file", "label", "probability", "top_k", "error"}


def test_a_killed_prediction_goes_on_without_duplicates_or_gaps(tiny_model, tiny_data, tmp_path, capsys):
    whole = tmp_path / "whole.csv"
    assert main(["predict", str(tiny_model), str(tiny_data), "--out", str(whole), "--chunk-size", "8"]) == 0
    out = tmp_path / "killed.csv"
    kill_after_two = (f"import os, signal; from centaur.batch import predict_to_file; "
                      f"predict_to_file({str(tiny_model)!r}, [{str(tiny_data)!r}], {str(out)!r}, chunk_size=8, "
                      f"on_chunk=lambda done, total: done == 2 and os.kill(os.getpid(), signal.SIGKILL))")
    killed = subprocess.run([sys.executable, "-c", kill_after_two], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    capsys.readouterr()
    assert main(["predict", str(tiny_model), str(tiny_data), "--out", str(out), "--chunk-size", "8"]) == 0
    assert "2 of 5 chunks from before" in capsys.readouterr().err
    assert out.read_bytes() == whole.read_bytes()


def test_worker_processes_write_the_same_file(tiny_model, tiny_data, tmp_path):
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    predict_to_file(tiny_model, [tiny_data], one, chunk_size=8)
    predict_to_file(tiny_model, [tiny_data], two, chunk_size=8, workers=2, threads=2)
    a, b = pd.read_parquet(one), pd.read_parquet(two)
    pd.testing.assert_frame_equal(a.drop(columns=["probability", "top_k"]), b.drop(columns=["probability", "top_k"]))
    pd.testing.assert_series_equal(a["probability"], b["probability"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_resumed_equals_the_table_predicted_at_once(shop_model, tmp_path, capsys, suffix):
    model, root = shop_model
    source = root / f"new{suffix}"
    # the old way: the whole table in memory, CSV on standard output
    capsys.readouterr()
    assert main(["predict", str(model), str(source)]) == 0
    at_once = capsys.readouterr().out
    out = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_to_file(model, [source], out, chunk_size=100, on_chunk=StopAfter(2))
    capsys.readouterr()
    assert main(["predict", str(model), str(source), "--out", str(out), "--chunk-size", "100"]) == 0
    err = capsys.readouterr().err
    assert "2 of 6 chunks from before" in err and "'shop' value not seen in training" in err
    assert "with categories not seen in training (column n_unseen)" in err
    whole = tmp_path / "whole.csv"
    predict_to_file(model, [source], whole, chunk_size=100)
    assert out.read_text() == whole.read_text()  # the same file, byte for byte, as a run never stopped
    # and the same numbers as the whole table in memory (a file holds 7 significant digits, float32's precision)
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(io.StringIO(at_once)), check_exact=False, rtol=1e-6)


def test_a_table_into_parquet(shop_model, tmp_path):
    model, root = shop_model
    out = tmp_path / "p.parquet"
    summary = predict_to_file(model, [root / "new.csv"], out, chunk_size=250)
    # counted over every chunk; weeks after the training dates are unseen too (a time split)
    assert summary["chunks"] == 3 and summary["rows"] == 600 and summary["unseen"]["shop"] == 1
    got = pd.read_parquet(out)
    assert list(got["row"]) == list(range(600)) and (got["n_unseen"] > 0).sum() == summary["rows_unseen"]
    as_csv = tmp_path / "p.csv"
    predict_to_file(model, [root / "new.parquet"], as_csv, chunk_size=600)  # Parquet in, one chunk
    # the CSV holds 7 significant digits (float32's precision), the Parquet every bit
    pd.testing.assert_frame_equal(got, pd.read_csv(as_csv), check_exact=False, rtol=1e-6)


# --- mistakes ---

def test_resuming_another_job_is_refused(tiny_model, tiny_data, tmp_path, capsys):
    out = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_to_file(tiny_model, [tiny_data], out, chunk_size=10, on_chunk=StopAfter(1))
    fails_with(capsys, ["predict", tiny_model, tiny_data, "--out", out, "--chunk-size", "12"],
               "unfinished prediction of another job", "chunk_size", "delete that folder")
    fails_with(capsys, ["predict", tiny_model, tiny_data / "animal", "--out", out, "--chunk-size", "10"],
               "another job", "files")


@pytest.mark.parametrize("argv, expected", [
    (["--out", "{tmp}/p.json"], ["must end in .csv or .parquet"]),
    (["--out", "{tmp}"], ["is a folder"]),
    (["--out", "{tmp}/p.csv", "--workers", "0"], ["--workers", "positive whole number"]),
    (["--out", "{tmp}/p.csv", "--chunk-size", "0"], ["--chunk-size", "positive whole number"]),
    (["--workers", "2"], ["--out"]),
    (["--chunk-size", "5"], ["--out"]),
])
def test_batch_prediction_mistakes_are_one_line(capsys, tiny_model, tiny_data, tmp_path, argv, expected):
    argv = [a.format(tmp=tmp_path) for a in argv]
    fails_with(capsys, ["predict", tiny_model, tiny_data, *argv], *expected)


def test_an_output_folder_that_cannot_be_written(capsys, tiny_model, tiny_data, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        fails_with(capsys, ["predict", tiny_model, tiny_data, "--out", locked / "p.csv"], "not writable")
    finally:
        locked.chmod(0o700)
