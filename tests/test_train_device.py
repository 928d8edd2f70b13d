"""Where a Learner trains: the default device, an explicit one, and clear errors for a GPU that is not there.

These machines have no GPU, so the CUDA paths are checked up to the point where a GPU would be
needed (with torch.cuda's answers replaced), and the training itself on the CPU.
"""
import pytest
import torch

from centaur.core.device import resolve_device
from centaur.core.errors import CentaurError
from centaur.train.checkpoint import load_checkpoint, save_checkpoint

from conftest import TINY_TRAIN
from test_cli_errors import fails_with
from test_train_learner import state, tiny_learner

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def test_explicit_cpu_trains_the_weights_of_the_default():
    default = tiny_learner()
    default.fit_one_cycle(2, 1e-2)
    cpu = tiny_learner(device="cpu")
    cpu.fit_one_cycle(2, 1e-2)
    assert default.device == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    assert cpu.device == torch.device("cpu")
    if default.device.type == "cpu":
        for k, v in state(default.model).items():
            assert torch.equal(state(cpu.model)[k], v), k


def test_batches_move_as_they_come_and_predictions_come_back_to_the_cpu():
    learn = tiny_learner(device="cpu")
    xb, yb = learn.dls.valid.one_batch()
    moved = learn.to_device((xb, [yb]))
    assert isinstance(moved, tuple) and isinstance(moved[1], list)
    assert moved[0] is xb and moved[1][0] is yb  # already there: the same tensors, no copies
    preds, targets = learn.get_preds()
    assert preds.device.type == targets.device.type == "cpu"
    learn.validate()
    assert learn.preds.device.type == "cpu"


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_a_gpu_is_a_clear_error(device):
    with pytest.raises(CentaurError, match="PyTorch sees none here.*--device cpu"):
        tiny_learner(device=device)


def test_an_unknown_device_is_named():
    with pytest.raises(CentaurError, match="unknown device 'gpu'.*'cuda'"):
        resolve_device("gpu")


def test_cuda_takes_the_gpu_of_this_process(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device(None) == resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(CentaurError, match=r"'cuda:2' does not exist: this machine has 2 GPU\(s\).*--nproc"):
        resolve_device("auto", local_rank=2)


def test_a_checkpoint_holds_cpu_tensors_and_resumes(tmp_path):
    learn = tiny_learner(device="cpu")
    learn.fit_one_cycle(1, 1e-2)
    path = save_checkpoint(learn, tmp_path / "ckpt.safetensors")
    again = tiny_learner(device="cpu")
    load_checkpoint(again, path)
    for k, v in state(learn.model).items():
        assert torch.equal(state(again.model)[k], v), k
    assert again.opt.state_dict()["state"].keys() == learn.opt.state_dict()["state"].keys()


@no_cuda
@pytest.mark.parametrize("extra", [[], ["--nproc", "2"]])
def test_train_device_cuda_without_a_gpu_is_one_line(capsys, tiny_data, tmp_path, extra):
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", "--device", "cuda", *TINY_TRAIN, *extra],
               "CUDA GPU", "--device cpu")
    assert not (tmp_path / "m").exists()


@no_cuda
def test_train_table_device_cuda_without_a_gpu_is_one_line(capsys, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    fails_with(capsys, ["train", table, "--target", "y", "--out", tmp_path / "m", "--device", "cuda"], "CUDA GPU")


def test_train_device_choices(capsys, tiny_data, tmp_path):
    fails_with(capsys, ["train", tiny_data, "--out", tmp_path / "m", "--device", "gpu"], "--device", "'gpu'")
