"""Ctrl-C in the middle of `centaur train`: status 130, the checkpoint kept, and --resume finishes the job."""
import json
import re
import signal
import subprocess
import sys
import time

from centaur.inference import Predictor

from conftest import copy_emoji, run_centaur


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes(tmp_path):
    data = copy_emoji(tmp_path / "data", per_class=10)
    out = tmp_path / "model"
    checkpoint = out / "checkpoint.safetensors"
    # Enough unfrozen epochs that Ctrl-C surely lands in training; each is a fraction of a second.
    args = ["train", str(data), "--out", str(out), "--size", "32", "--bs", "16", "--freeze-epochs", "1",
            "--epochs", "8"]
    # A test runner started in the background by a shell inherits SIGINT as ignored, and so would the
    # child; restore the default so Python installs its KeyboardInterrupt handler, as in a terminal.
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before its first checkpoint: " + proc.stderr.read()
        assert checkpoint.exists(), "no checkpoint within 240 s"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "Ctrl-C" in stderr and "--resume" in stderr
    assert "checkpoint kept" in stderr and str(checkpoint) in stderr
    assert checkpoint.is_file() and not (out / "model.json").exists()

    result = run_centaur(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stderr
    # it went on from the checkpoint: the frozen epoch is not run again (8 epoch lines at most, not 9)
    epoch_lines = [line for line in result.stderr.splitlines() if re.match(r"\s+\d+\s+\d+\.\d+", line)]
    assert 1 <= len(epoch_lines) <= 8, result.stderr
    assert "accuracy" in result.stdout
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["animal", "face", "food"]
    assert (out / "model.safetensors").is_file()
    assert not checkpoint.exists()  # the finished model replaces the checkpoint

    # a resumed model predicts like any other
    rows = list(Predictor(out).predict_paths([data / "food"]))
    assert len(rows) == 10 and all(r["label"] in meta["classes"] for r in rows)


def test_the_resume_hint_after_lr_auto_gives_the_rate_it_chose(tmp_path, capsys):
    from centaur.cli import _resume_hint, build_parser
    from conftest import two_colour_dls
    from torch import nn
    from centaur.models.heads import BodyHead, create_head
    from centaur.train.learner import Learner
    out = tmp_path / "model"
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    learn = Learner(two_colour_dls(), BodyHead(body, create_head(4, 2, hidden=8)), progress=False)
    chosen = 0.004862601580065354  # as lr_find returns it, more digits than any summary shows
    learn.fine_tune(1, base_lr=chosen, freeze_epochs=0, checkpoint=out / "checkpoint.safetensors")
    argv = ["train", str(tmp_path / "data"), "--out", str(out), "--lr", "auto", "--epochs", "1"]
    _resume_hint(build_parser().parse_args(argv), argv)
    hint = capsys.readouterr().err
    assert f"--lr {chosen!r}" in hint and "auto" not in hint and hint.rstrip().endswith("--resume")


def test_a_seed_outside_what_generators_take_is_one_line(capsys, tmp_path):
    from centaur.cli import main
    for seed in ("-1", "99999999999999999999", "abc"):
        assert main(["train", str(tmp_path), "--seed", seed]) == 2
        err = capsys.readouterr().err
        assert "--seed" in err and "Traceback" not in err
