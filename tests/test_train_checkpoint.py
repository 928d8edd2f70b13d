"""Checkpoints: Ctrl-C keeps the last finished epoch, resume goes on from it and ends where an
uninterrupted run ends; damaged or foreign checkpoints are refused with a clear message."""
import json

import pytest
import torch
from safetensors import safe_open
from torch import nn

from centaur.core.errors import CentaurError
from centaur.models.heads import BodyHead, create_head
from centaur.train.callbacks import Callback
from centaur.train.checkpoint import load_checkpoint, save_checkpoint
from centaur.train.learner import Learner, TrainingInterrupted

from conftest import two_colour_dls


def make_learner(seed=0, init_seed=None, path=None, bs=12):
    """Shuffled training data and a head with dropout, so the result depends on every RNG."""
    dls = two_colour_dls(48, 16, bs=bs, seed=seed)
    torch.manual_seed(seed if init_seed is None else init_seed)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    model = BodyHead(body, create_head(8, 2, hidden=16, dropout=0.5))
    return Learner(dls, model, progress=False, param_groups=[list(body.parameters()), list(model.head.parameters())])


class Interrupt(Callback):
    """Press Ctrl-C at a given (phase, epoch, training batch)."""

    def __init__(self, phase, epoch, batch):
        self.at, self.count = (phase, epoch, batch), 0

    def before_epoch(self):
        self.count = 0

    def before_batch(self):
        if not self.learn.training:
            return
        if (self.learn.phase, self.learn.epoch, self.count) == self.at:
            raise KeyboardInterrupt
        self.count += 1


class Trace(Callback):
    """(phase, epoch, step, head lr) at every training step."""

    def __init__(self):
        self.steps = []

    def before_step(self):
        self.steps.append((self.learn.phase, self.learn.epoch, self.learn.step, self.learn.opt.param_groups[-1]["lr"]))


PLAN = dict(epochs=3, base_lr=1e-2, freeze_epochs=2, lr_mult=10)


def weights(learn):
    return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}


@pytest.mark.parametrize("stop_at", [(1, 1, 2), (0, 1, 1)])
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path, stop_at):
    full_trace = Trace()
    full = make_learner()
    full.fine_tune(cbs=[full_trace], checkpoint=tmp_path / "full.safetensors", **PLAN)

    ckpt = tmp_path / "run.safetensors"
    first = make_learner()
    with pytest.raises(TrainingInterrupted, match="--resume") as info:
        first.fine_tune(cbs=[Interrupt(*stop_at)], checkpoint=ckpt, **PLAN)
    assert str(ckpt) in str(info.value)
    assert isinstance(info.value, CentaurError)  # the CLI prints it as one line
    phase, epoch, _ = stop_at
    with safe_open(str(ckpt), framework="pt") as f:  # the checkpoint holds the last finished epoch
        meta = json.loads(f.metadata()["centaur"])
    assert (meta["phase"], meta["epoch"]) == ((phase, epoch - 1) if epoch else (phase - 1, PLAN["freeze_epochs"] - 1))

    # a new process: other initial weights and fresh generators; the checkpoint restores everything
    resumed_trace = Trace()
    resumed = make_learner(init_seed=99)
    resumed.fine_tune(cbs=[resumed_trace], checkpoint=ckpt, resume=True, **PLAN)

    # the resumed steps are exactly the tail of the uninterrupted run: epochs, steps and schedule go on
    n = len(resumed_trace.steps)
    assert 0 < n < len(full_trace.steps)
    assert [s[:3] for s in resumed_trace.steps] == [s[:3] for s in full_trace.steps[-n:]]
    assert [s[3] for s in resumed_trace.steps] == pytest.approx([s[3] for s in full_trace.steps[-n:]], rel=1e-12)
    # model, optimizer and RNG states (shuffle, dropout) are restored, and CPU kernels are
    # deterministic at a fixed thread count, so the weights agree to float rounding (in practice: exactly)
    a, b = weights(full), weights(resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    sa, sb = full.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for pid in sa:
        for name in sa[pid]:
            torch.testing.assert_close(sb[pid][name], sa[pid][name], rtol=1e-5, atol=1e-8)


def test_resume_restores_optimizer_state_and_position(tmp_path):
    learn = make_learner()
    learn.fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=tmp_path / "c.safetensors")
    other = make_learner(init_seed=5)
    plan = {"method": "fine_tune", "epochs": 1, "freeze_epochs": 1, "base_lr": 1e-2, "lr_mult": 100,
            "pct_start": 0.3, "div": 5.0, "batches_per_epoch": 4, "data": other.dls.fingerprint()}
    meta = load_checkpoint(other, tmp_path / "c.safetensors", plan)
    assert (meta["phase"], meta["epoch"], meta["step"]) == (1, 0, 4)
    assert other.resuming
    a, b = learn.opt.state_dict(), other.opt.state_dict()
    assert a["state"].keys() == b["state"].keys() and len(a["state"]) > 0
    for pid in a["state"]:
        for name, value in a["state"][pid].items():
            assert torch.equal(value, b["state"][pid][name]), (pid, name)
    assert [g["betas"] for g in a["param_groups"]] == [g["betas"] for g in b["param_groups"]]
    wa, wb = weights(learn), weights(other)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ctrl_c_before_any_epoch_finished(tmp_path):
    learn = make_learner()
    with pytest.raises(TrainingInterrupted, match="no checkpoint to resume from"):
        learn.fine_tune(cbs=[Interrupt(0, 0, 1)], checkpoint=tmp_path / "c.safetensors", **PLAN)
    with pytest.raises(TrainingInterrupted, match="No checkpoint was being written"):
        make_learner().fit(2, cbs=[Interrupt(0, 0, 1)])


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CentaurError, match="no checkpoint"):
        make_learner().fine_tune(checkpoint=tmp_path / "missing.safetensors", resume=True, **PLAN)


def test_damaged_checkpoint_is_refused(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    make_learner().fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt)
    data = ckpt.read_bytes()
    for name, damaged in [("truncated", data[: len(data) // 2]), ("garbage", b"not a checkpoint at all"),
                          ("empty", b"")]:
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(damaged)
        with pytest.raises(CentaurError, match="damaged or not a centaur checkpoint"):
            make_learner().fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=bad, resume=True)
    # a valid safetensors file that is not a checkpoint (no centaur metadata)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CentaurError, match="not a centaur checkpoint"):
        make_learner().fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=tmp_path / "foreign.safetensors",
                                 resume=True)


def test_checkpoint_from_another_plan_or_model_is_refused(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    make_learner().fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt)
    with pytest.raises(CentaurError, match="different run"):
        make_learner().fine_tune(epochs=2, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True)
    with pytest.raises(CentaurError, match="different run"):
        make_learner().fine_tune(epochs=1, base_lr=5e-3, freeze_epochs=1, checkpoint=ckpt, resume=True)
    with pytest.raises(CentaurError, match="different run"):  # another batch size: another schedule position
        make_learner(bs=8).fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True)
    with pytest.raises(CentaurError, match="differs in epochs: 1 then, 2 now"):
        make_learner().fine_tune(epochs=2, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True)
    other_data = make_learner()
    other_data.dls = two_colour_dls(50, 14, bs=12)  # as many batches, other images on each side
    assert len(other_data.dls.train) == len(make_learner().dls.train)
    with pytest.raises(CentaurError, match="the data: other images or labels, another split"):
        other_data.fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True)
    # same plan, another model
    other = make_learner()
    other.model.head[-1] = nn.Linear(16, 3, bias=False)
    with pytest.raises(CentaurError, match="weights of another model"):
        other.fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True)


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    done = make_learner()
    done.fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt)
    again, trace = make_learner(init_seed=3), Trace()
    again.fine_tune(epochs=1, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, resume=True, cbs=[trace])
    assert trace.steps == []
    wa, wb = weights(done), weights(again)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_save_checkpoint_is_atomic_and_readable(tmp_path):
    learn = make_learner()
    learn.fit(1)
    path = save_checkpoint(learn, tmp_path / "sub" / "c.safetensors")
    assert path.is_file() and not (tmp_path / "sub" / "c.safetensors.tmp").exists()
    meta = load_checkpoint(make_learner(), path)
    assert meta["epoch"] == 0 and meta["step"] == 4


def test_resume_with_augmentation_and_random_crops_matches(tmp_path):
    """The real image pipeline: random crops (Python's RNG), batch augmentation (torch's), shuffling
    (the loader's generator) and dropout; the resumed run ends with exactly the same weights."""
    import numpy as np
    from PIL import Image
    from centaur.core.seed import set_seed
    from centaur.vision.learner import vision_learner
    from centaur.vision.recipes import image_datablock

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for label, channel in (("red", 0), ("blue", 2)):
        (root / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 80, (40, 48, 3), dtype=np.uint8)
            pixels[..., channel] += 150
            Image.fromarray(pixels).save(root / label / f"{i}.png")

    def make(seed):
        set_seed(seed)
        dblock, _ = image_datablock(root, size=32, resize="crop", augment=True, seed=0)
        return vision_learner(dblock.dataloaders(root, bs=8, seed=0), "resnet10t", pretrained=False, hidden=16,
                              progress=False)

    plan = dict(epochs=2, freeze_epochs=1, base_lr=2e-3)
    full = make(0)
    full.fine_tune(checkpoint=tmp_path / "full.safetensors", **plan)
    with pytest.raises(TrainingInterrupted):
        make(0).fine_tune(checkpoint=tmp_path / "run.safetensors", cbs=[Interrupt(1, 1, 0)], **plan)
    resumed = make(7)
    resumed.fine_tune(checkpoint=tmp_path / "run.safetensors", resume=True, **plan)
    a, b = weights(full), weights(resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


def test_fit_one_cycle_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """What `centaur train TABLE.csv --resume` relies on: fit_one_cycle(checkpoint=..., resume=True)."""
    full = make_learner()
    full.fit_one_cycle(3, 1e-2, checkpoint=tmp_path / "full.safetensors")
    ckpt = tmp_path / "run.safetensors"
    with pytest.raises(TrainingInterrupted, match="--resume"):
        make_learner().fit_one_cycle(3, 1e-2, checkpoint=ckpt, cbs=[Interrupt(0, 2, 1)])
    with pytest.raises(CentaurError, match="different run"):
        make_learner().fit_one_cycle(4, 1e-2, checkpoint=ckpt, resume=True)
    resumed = make_learner(init_seed=99)
    resumed.fit_one_cycle(3, 1e-2, checkpoint=ckpt, resume=True)
    a, b = weights(full), weights(resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    assert [e["epoch"] for e in resumed.recorder.epochs] == [3]


class CtrlCAfterTheRow(Callback):
    """Ctrl-C the moment the progress table has printed an epoch's row."""

    order = 61  # just after ProgressCallback

    def after_epoch(self):
        raise KeyboardInterrupt


def test_ctrl_c_right_after_an_epochs_row_finds_that_epoch_saved(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    learn = make_learner()
    with pytest.raises(TrainingInterrupted, match="--resume"):
        learn.fine_tune(epochs=2, base_lr=1e-2, freeze_epochs=1, checkpoint=ckpt, cbs=[CtrlCAfterTheRow()])
    meta = load_checkpoint(make_learner(), ckpt)
    assert (meta["phase"], meta["epoch"]) == (0, 0)  # the epoch whose row was on the screen
