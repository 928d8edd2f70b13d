"""The Learner on tiny synthetic data: events, callbacks, freezing, fine_tune, AdamW, lr_find."""
import math

import pytest
import torch
from torch import nn

from centaur.core.errors import CentaurError
from centaur.data.blocks import CategoryBlock, TensorImageBlock
from centaur.data.loaders import DataLoaders, Datasets
from centaur.models.heads import BodyHead, create_head
from centaur.train.callbacks import (EVENTS, CancelBatch, CancelEpoch, CancelFit, Callback, CheckpointCallback,
                                     EarlyStopping, ProgressCallback, SaveBest)
from centaur.train.learner import Learner
from centaur.train.schedule import one_cycle


def color_dls(n_train=64, n_valid=32, bs=16, size=8, seed=0, noise=60):
    """A learnable problem: 'red' images have a bright red channel, 'green' ones a bright green one."""
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_valid
    labels = ["red" if i % 2 else "green" for i in range(n)]
    xs = torch.randint(0, noise, (n, 3, size, size), generator=g)
    for i, label in enumerate(labels):
        xs[i, 0 if label == "red" else 1] += 120
    xs = list(xs.clamp(0, 255).to(torch.uint8))
    y_block = CategoryBlock()
    y_block.setup(labels[:n_train])
    train = Datasets(xs[:n_train], labels[:n_train], TensorImageBlock(), y_block, [], train=True)
    valid = Datasets(xs[n_train:], labels[n_train:], TensorImageBlock(), y_block, [], train=False)
    return DataLoaders(train, valid, bs=bs, seed=seed)


def tiny_model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())  # (B, 8, H, W)
    return BodyHead(body, create_head(8, 2, hidden=16, dropout=dropout))


def tiny_learner(seed=0, dropout=0.0, **kwargs):
    model = tiny_model(seed, dropout)
    kwargs.setdefault("progress", False)
    return Learner(color_dls(seed=seed), model, param_groups=[list(model.body.parameters()),
                                                                list(model.head.parameters())], **kwargs)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class AllEvents(Callback):
    """Defines every event, so check_events and show_training_loop see them all."""
    def __init__(self):
        self.events = []


for _event in EVENTS:
    setattr(AllEvents, _event, (lambda e: lambda self: self.events.append(e))(_event))


def test_events_fire_in_documented_order():
    learn = tiny_learner()
    rec = AllEvents()
    learn.fit(1, cbs=[rec])
    n_train, n_valid = len(learn.dls.train), len(learn.dls.valid)
    assert (n_train, n_valid) == (4, 2)
    batch = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward", "before_step",
             "after_step", "after_batch"]
    expected = (["before_fit", "before_epoch", "before_train"] + batch * n_train + ["after_train", "before_validate"]
                + ["after_batch"] * n_valid + ["after_validate", "after_epoch", "after_fit"])
    assert rec.events == expected
    assert rec not in learn.cbs  # callbacks given to fit are removed afterwards


def test_misspelled_event_is_refused_with_did_you_mean():
    class Typo(Callback):
        def after_epcoh(self):
            pass

    learn = tiny_learner()
    with pytest.raises(CentaurError, match=r"after_epcoh is not a training event.*Did you mean: 'after_epoch'"):
        learn.fit(1, cbs=[Typo()])
    with pytest.raises(CentaurError, match="after_epcoh"):
        Learner(learn.dls, learn.model, cbs=[Typo()], progress=False)


def test_callback_classes_and_names():
    learn = tiny_learner()
    learn.fit(1, cbs=[EarlyStopping])  # a class is instantiated, and removed again afterwards
    assert not any(isinstance(cb, EarlyStopping) for cb in learn.cbs)
    assert not hasattr(learn, "early_stopping")
    assert learn.recorder in learn.cbs

    class Model(Callback):
        pass

    with pytest.raises(CentaurError, match="would hide Learner.model"):
        learn.add_cbs([Model()])
    assert isinstance(learn.model, BodyHead)
    with pytest.raises(CentaurError, match="not a Callback"):
        learn.add_cbs([object()])


def test_a_callback_attached_twice_runs_once_and_removal_says_what_is_attached():
    learn = tiny_learner()
    rec = AllEvents()
    learn.add_cbs([rec, rec])
    learn.fit(1, cbs=[rec])  # already attached: fit neither doubles it nor detaches it afterwards
    assert rec.events.count("before_fit") == 1 and [c for c in learn.cbs if c is rec] == [rec]
    learn.remove_cbs(AllEvents)  # a class detaches every attached one of it
    assert rec not in learn.cbs and not hasattr(learn, "all_events")
    with pytest.raises(CentaurError, match="AllEvents is not attached to this Learner; attached are: Recorder"):
        learn.remove_cbs(rec)
    learn.add_cbs(EarlyStopping)  # one callback needs no list
    learn.remove_cbs(learn.early_stopping)
    assert not hasattr(learn, "early_stopping")


def test_unknown_metric_and_bad_epochs():
    with pytest.raises(CentaurError, match="Did you mean: 'accuracy'"):
        tiny_learner(metrics=["accuracyy"])
    with pytest.raises(CentaurError, match="positive integer"):
        tiny_learner().fit(0)


def test_cancel_fit_batch_and_epoch():
    class StopAfterTwo(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.step == 2:
                raise CancelFit()

    learn = tiny_learner()
    rec = AllEvents()
    learn.fit(5, cbs=[StopAfterTwo(), rec])
    assert learn.step == 2 and learn.epoch == 0
    assert rec.events[-1] == "after_fit" and "after_epoch" not in rec.events

    class SkipEveryBatch(Callback):
        def before_batch(self):
            if self.learn.training:
                raise CancelBatch()

    learn = tiny_learner()
    before = state(learn.model)
    learn.fit(1, cbs=[SkipEveryBatch()])
    assert learn.step == 0
    assert all(torch.equal(before[k], v) for k, v in state(learn.model).items())

    class OneBatchEpochs(Callback):
        def after_batch(self):
            if self.learn.training:
                raise CancelEpoch()

    learn = tiny_learner()
    rec = AllEvents()
    learn.fit(3, cbs=[OneBatchEpochs(), rec])
    assert learn.step == 3  # one batch in each of the three epochs
    # a cancelled epoch skips validation and after_epoch, but the next epoch still runs
    assert rec.events.count("before_epoch") == 3 and rec.events.count("after_epoch") == 0
    # ... and after_train still closes what before_train opened (a progress bar, DDP's wrapper)
    assert rec.events.count("after_train") == 3


def test_cancel_batch_anywhere_even_in_validation():
    class SkipAfterEveryBatch(Callback):  # after_batch also fires for validation batches
        def after_batch(self):
            raise CancelBatch()

    learn = tiny_learner()
    learn.fit(1, cbs=[SkipAfterEveryBatch()])  # escaped fit from the first validation batch before
    assert learn.step == 4 and math.isfinite(learn.epoch_log["valid_loss"])

    class SkipEveryLoss(Callback):
        def after_loss(self):
            raise CancelBatch()

    learn = tiny_learner()
    learn.fit(1, cbs=[SkipEveryLoss()])
    assert math.isnan(learn.epoch_log["train_loss"])  # no batch trained: no loss, not 0.0


@pytest.mark.parametrize("lr", [-1.0, float("nan"), float("inf"), 0, "1e-3", True, [1e-3, -1e-3]])
def test_learning_rates_that_cannot_train_are_refused(lr):
    learn = tiny_learner()
    before = state(learn.model)
    with pytest.raises(CentaurError, match="learning rates must be positive numbers"):
        learn.fit_one_cycle(1, lr)
    assert all(torch.equal(before[k], v) for k, v in state(learn.model).items())  # nothing trained


def test_fastai_slices_of_learning_rates():
    learn = tiny_learner()  # two parameter groups: body, head
    assert learn.learning_rates(slice(1e-5, 1e-3)) == pytest.approx([1e-5, 1e-3])
    assert learn.learning_rates(slice(1e-3)) == pytest.approx([1e-4, 1e-3])
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    rates = {g.get("learner_group", 0): g["lr"] for g in learn.opt.param_groups}  # body 0, head 1
    assert rates[1] / rates[0] == pytest.approx(100)


@pytest.mark.parametrize("call, message", [
    (lambda l: l.fit_one_cycle(1, 1e-3, pct_start=1.5), "pct_start"),
    (lambda l: l.fit_one_cycle(True, 1e-3), "positive integer"),
    (lambda l: l.fine_tune(0), "epochs must be a whole number of at least 1"),
    (lambda l: l.fine_tune(1, lr_mult=0), "lr_mult"),
    (lambda l: l.lr_find(num_it=0), "num_it"),
    (lambda l: l.lr_find(plot=True), "plot is the path of a PNG"),
])
def test_options_are_checked_before_any_training(call, message):
    learn = tiny_learner()
    before = state(learn.model)
    with pytest.raises(CentaurError, match=message):
        call(learn)
    assert all(torch.equal(before[k], v) for k, v in state(learn.model).items())


def test_early_stopping_stops():
    class FakeLoss(Callback):
        """Pretend validation loss never improves after the first epoch."""
        order = 60

        def after_epoch(self):
            self.learn.epoch_log["valid_loss"] = 1.0 + (self.learn.epoch > 0) * 0.1

    learn = tiny_learner()
    learn.fit(10, cbs=[FakeLoss(), EarlyStopping(patience=2)])
    assert learn.epoch == 2  # epoch 0 best; 1 and 2 do not improve: stop after the third epoch
    assert len(learn.recorder.epochs) == 3
    with pytest.raises(CentaurError, match="Did you mean: 'valid_loss'"):
        tiny_learner().fit(1, cbs=[EarlyStopping(monitor="valid_los")])


def test_early_stopping_saves_the_epoch_that_stops(tmp_path):
    """The checkpoint holds the last epoch run, also when early stopping ends the fit."""
    from safetensors import safe_open

    class FakeLoss(Callback):
        order = 60

        def after_epoch(self):
            self.learn.epoch_log["valid_loss"] = 1.0 + (self.learn.epoch > 0) * 0.1

    learn = tiny_learner()
    path = tmp_path / "checkpoint.safetensors"
    learn.fit(10, cbs=[FakeLoss(), EarlyStopping(patience=2), CheckpointCallback(path)])
    assert learn.epoch == 2
    with safe_open(str(path), "pt") as f:
        saved = {k[len("model."):]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
    now = state(learn.model)
    assert all(torch.equal(saved[k], now[k]) for k in now)


def test_save_best_restores_best_weights():
    snapshots = {}

    class Scripted(Callback):
        """Validation 'accuracy' peaks at epoch 1; remember the weights then."""
        order = 60

        def after_epoch(self):
            self.learn.epoch_log["accuracy"] = [0.5, 0.9, 0.7, 0.6][self.learn.epoch]
            snapshots[self.learn.epoch] = state(self.learn.model)

    learn = tiny_learner()
    save_best = SaveBest(monitor="accuracy")
    assert save_best.mode == "max"
    learn.fit(4, lr=1e-2, cbs=[Scripted(), save_best])
    assert save_best.best_epoch == 1
    final = state(learn.model)
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[3][k]) for k in final)


def test_show_training_loop(capsys):
    learn = tiny_learner(cbs=[EarlyStopping()])
    assert learn.show_training_loop() is None  # printed once: a notebook would show a returned table again
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(EVENTS)
    table = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    assert table["after_epoch"] == "Recorder, EarlyStopping"  # in callback order
    assert table["before_fit"] == "Recorder, EarlyStopping"
    assert table["after_pred"] == "-"


def test_loss_decreases_and_model_learns():
    learn = tiny_learner(metrics=["accuracy", "error_rate"])
    before = learn.validate()
    learn.fit_one_cycle(6, 2e-2)
    losses = learn.recorder.losses
    assert len(losses) == 6 * 4
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4
    after = learn.validate()
    assert after["valid_loss"] < before["valid_loss"]
    assert after["accuracy"] == pytest.approx(1.0)
    assert after["error_rate"] == pytest.approx(0.0)
    epochs = learn.recorder.epochs
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert set(epochs[0]) >= {"train_loss", "valid_loss", "accuracy", "error_rate", "time", "step"}
    preds, targets = learn.get_preds()
    assert preds.shape == (32, 2) and targets.shape == (32,)


def test_freeze_keeps_body_and_runs_it_without_grad():
    learn = tiny_learner()
    learn.freeze()
    assert learn.model.frozen
    assert not any(p.requires_grad for p in learn.model.body.parameters())
    assert all(p.requires_grad for p in learn.model.head.parameters())
    seen = []

    def hook(module, inputs, output):
        seen.append((torch.is_grad_enabled(), output.requires_grad, module.training))

    handle = learn.model.body.register_forward_hook(hook)
    body_before, head_before = state(learn.model.body), state(learn.model.head)
    learn.fit(2, lr=1e-2)
    handle.remove()
    # the body ran in eval mode without autograd at every training batch
    assert seen and all(s == (False, False, False) for s in seen)
    body_after, head_after = state(learn.model.body), state(learn.model.head)
    # parameters and BatchNorm running statistics of the body are untouched
    assert all(torch.equal(body_before[k], body_after[k]) for k in body_before)
    assert not all(torch.equal(head_before[k], head_after[k]) for k in head_before)


def test_unfreeze_trains_both():
    learn = tiny_learner()
    learn.freeze()
    learn.unfreeze()
    assert not learn.model.frozen
    assert all(p.requires_grad for p in learn.model.parameters())
    learn.model.train()
    assert learn.model.body.training
    before = state(learn.model)
    learn.fit(1, lr=1e-2)
    after = state(learn.model)
    for part in ("body.0.weight", "body.1.running_mean", "head.7.weight"):
        assert not torch.equal(before[part], after[part]), part


class GroupLrs(Callback):
    def before_fit(self):
        self.phases = getattr(self, "phases", [])
        self.phases.append([])

    def before_step(self):
        # one rate per learner group (each is split into decayed and not-decayed optimizer groups)
        by_group = {g["learner_group"]: g["lr"] for g in self.learn.opt.param_groups}
        assert all(by_group[g["learner_group"]] == g["lr"] for g in self.learn.opt.param_groups)
        self.phases[-1].append([by_group[i] for i in sorted(by_group)])


def test_fine_tune_uses_discriminative_lrs():
    learn = tiny_learner()
    rec = GroupLrs()
    frozen_body = {}

    class CheckFrozen(Callback):
        def before_fit(self):
            frozen_body[self.learn.phase] = self.learn.model.frozen

    base_lr, lr_mult = 1e-2, 50
    body_before = state(learn.model.body)
    learn.fine_tune(2, base_lr=base_lr, freeze_epochs=1, lr_mult=lr_mult, cbs=[rec, CheckFrozen()])
    assert frozen_body == {0: True, 1: False}
    frozen, unfrozen = rec.phases
    assert len(frozen) == 4 and len(unfrozen) == 8
    # frozen phase: fastai's one-cycle to base_lr with pct_start 0.99 (div 25)
    for step, lrs in enumerate(frozen):
        assert lrs[1] == pytest.approx(one_cycle(step, 4, base_lr, 25.0, 1e5, 0.99)[0], rel=1e-12)
    # whole network: the head follows a cycle to base_lr/2 (div 5, pct_start 0.3), and the body
    # always trains lr_mult times slower
    for step, (body_lr, head_lr) in enumerate(unfrozen):
        assert head_lr == pytest.approx(one_cycle(step, 8, base_lr / 2, 5.0, 1e5, 0.3)[0], rel=1e-12)
        assert body_lr == pytest.approx(head_lr / lr_mult, rel=1e-12)
    assert not all(torch.equal(body_before[k], v) for k, v in state(learn.model.body).items())
    assert learn.plan["method"] == "fine_tune" and learn.plan["lr_mult"] == lr_mult


def test_adamw_decoupled_weight_decay():
    class WithIdle(nn.Module):
        """A model with one parameter whose gradient is always exactly zero."""
        def __init__(self):
            super().__init__()
            self.inner = tiny_model()
            self.idle = nn.Parameter(torch.full((3,), 2.0))

        def forward(self, x):
            return self.inner(x) + 0.0 * self.idle.sum()

    model = WithIdle()
    learn = Learner(color_dls(), model, wd=0.1, progress=False)
    learn.create_opt()
    assert type(learn.opt) is torch.optim.AdamW
    decayed = {id(p) for g in learn.opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    assert id(model.idle) in decayed
    assert {g["weight_decay"] for g in learn.opt.param_groups} == {0.1, 0.0}
    lr = 1e-2
    learn.fit(2, lr=lr)
    steps = learn.step
    assert steps == 8
    assert model.idle.grad is None or torch.all(model.idle.grad == 0)
    # decoupled: the zero gradient gives no Adam step, yet the weight shrinks by lr * wd each step
    # (L2 regularisation folded into the gradient would instead be normalised by Adam)
    expected = 2.0 * (1 - lr * 0.1) ** steps
    assert torch.allclose(model.idle.detach(), torch.full((3,), expected), rtol=1e-6)


def test_lr_find_suggests_restores_and_plots(tmp_path):
    learn = tiny_learner()
    learn.fit(1, lr=1e-3)
    before_model, before_opt = state(learn.model), learn.opt.state_dict()
    before_opt_state = {k: {n: v.clone() for n, v in s.items()} for k, s in before_opt["state"].items()}
    plot = tmp_path / "lr.png"
    suggestion, lrs, losses = learn.lr_find(start_lr=1e-5, end_lr=10, num_it=30, plot=plot)
    assert 1e-5 <= suggestion <= 10 and suggestion in lrs
    assert lrs == sorted(lrs) and len(lrs) == len(losses) <= 30
    assert all(math.isfinite(v) for v in losses[:-1])
    after = state(learn.model)
    assert all(torch.equal(before_model[k], after[k]) for k in after)
    after_opt = learn.opt.state_dict()
    for k, s in before_opt_state.items():
        for n, v in s.items():
            assert torch.equal(v, after_opt["state"][k][n])
    assert [g["lr"] for g in after_opt["param_groups"]] == [g["lr"] for g in before_opt["param_groups"]]
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoothed_losses_start_at_the_first_loss_and_follow_the_rest():
    # fastai's average: started at 0 and debiased, so the first point is the first batch's loss
    # (started at the first loss and debiased as well, it was 50x too high, a fake descent)
    learn = tiny_learner()
    raw = []
    real_loss = learn.loss_func

    def recording(out, y):
        loss = real_loss(out, y)
        raw.append(loss.item())
        return loss

    learn.loss_func = recording
    found = learn.lr_find(start_lr=1e-6, end_lr=1e-5, num_it=10)  # rates too small to change the loss
    assert found.losses[0] == pytest.approx(raw[0], rel=1e-6)
    assert max(found.losses) < 1.5 * max(raw[:10]) and found.suggestion == found[0]
    assert repr(found).startswith("LRFind(suggestion=") and found._repr_png_()[:4] == b"\x89PNG"  # a notebook shows it
    learn.loss_func = real_loss
    seen = []

    class Watch(Callback):
        def after_batch(self):
            if self.learn.training:
                seen.append((self.learn.loss_value, self.learn.smooth_loss))

    learn.fit(2, lr=1e-3, cbs=[Watch()])
    assert seen[0][1] == pytest.approx(seen[0][0])  # the bar's first loss is the batch's
    losses = [v for v, _ in seen]
    assert min(losses) <= seen[-1][1] <= max(losses)  # never above every loss it averages


def test_lr_find_restores_weights_when_interrupted():
    learn = tiny_learner()
    learn.fit(1, lr=1e-3)
    before = state(learn.model)
    calls = {"n": 0}
    real_loss = learn.loss_func

    def loss_then_ctrl_c(out, y):  # a user presses Ctrl-C on the fifth batch of the search
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_loss(out, y)

    learn.loss_func = loss_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        learn.lr_find(start_lr=1e-3, end_lr=10, num_it=30)
    after = state(learn.model)
    assert calls["n"] == 5 and all(torch.equal(before[k], after[k]) for k in after)


def test_progress_prints_one_line_per_epoch_and_validate_works_outside_fit():
    import io
    from centaur.train.callbacks import ProgressCallback
    buf = io.StringIO()
    learn = tiny_learner(metrics=["accuracy"], cbs=[ProgressCallback(stream=buf)])
    result = learn.validate()  # before any fit: no progress bar state yet
    assert set(result) == {"valid_loss", "accuracy"}
    learn.fit(2, lr=1e-2)
    lines = buf.getvalue().strip().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]


def test_recorder_plots_losses(tmp_path):
    learn = tiny_learner()
    learn.fit(2, lr=1e-2)
    assert len(learn.recorder.losses) == len(learn.recorder.lrs) == 8
    assert [e["step"] for e in learn.recorder.epochs] == [4, 8]
    path = learn.recorder.plot_loss(tmp_path / "loss.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    png = learn.recorder.plot_loss()  # in a notebook: shown inline
    assert png[:4] == b"\x89PNG" and png._repr_png_() == bytes(png)


def test_lr_find_bad_range_and_training_mode():
    learn = tiny_learner()
    with pytest.raises(CentaurError, match="start_lr < end_lr"):
        learn.lr_find(start_lr=1.0, end_lr=1e-3)
    learn.model.eval()
    learn.lr_find(num_it=5)
    assert not learn.model.training


def test_a_refused_callback_leaves_the_learner_unchanged():
    class Typo(Callback):
        def befor_fit(self):
            pass

    learn = tiny_learner()
    before = list(learn.cbs)
    with pytest.raises(CentaurError, match="Did you mean: 'before_fit'"):
        learn.add_cbs([EarlyStopping(), Typo()])
    assert learn.cbs == before and not hasattr(learn, "early_stopping")


def test_fine_tune_keeps_one_history_for_both_phases():
    learn = tiny_learner()
    learn.fine_tune(2, freeze_epochs=1)
    assert len(learn.recorder.epochs) == 3  # 1 frozen + 2 unfrozen
    assert len(learn.recorder.losses) == 3 * len(learn.dls.train)
    n = len(learn.dls.train)  # plot_loss draws each validation point after its epoch's batches
    assert learn.recorder.epoch_ends() == [n, 2 * n, 3 * n]
    learn.fit(1)  # a new fit starts a new history
    assert len(learn.recorder.epochs) == 1


def test_progress_in_a_notebook_updates_one_bar_and_one_table_in_place():
    """In Jupyter the bar and the epoch table are HTML outputs replaced in place, not new lines."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    saved, shell.display_pub = shell.display_pub, CapturingDisplayPublisher()
    try:
        learn = tiny_learner(progress=False)
        learn.fit(2, lr=1e-3, cbs=[ProgressCallback(notebook=True)])
        outputs = list(shell.display_pub.outputs)
    finally:
        shell.display_pub = saved
    html = [o for o in outputs if "text/html" in o["data"]]
    assert html and len(html) == len(outputs)
    bars = [o for o in html if "<progress" in o["data"]["text/html"]]
    tables = [o for o in html if "centaur-epochs" in o["data"]["text/html"]]
    # one bar for the whole fit, redrawn for each phase (2 epochs x train and valid), above the table:
    # a new bar per phase piled up 2 per epoch in the cell, the table lost among them
    assert sum(not o["update"] for o in bars) == 1 and any(o["update"] for o in bars)
    assert outputs.index(next(o for o in bars if not o["update"])) < outputs.index(tables[0])
    assert any("epoch 2/2 valid" in o["data"]["text/html"] for o in bars)
    n_valid = len(learn.dls.valid)
    assert f'value="{n_valid}" max="{n_valid}"' in bars[-1]["data"]["text/html"]  # the last bar shown full
    # the table appears once and is then replaced, ending with a row per epoch
    assert [o["update"] for o in tables] == [False, True]
    assert tables[-1]["data"]["text/html"].count("<tr>") == 3 and "valid_loss" in tables[-1]["data"]["text/html"]


def test_batch_norm_and_biases_are_not_decayed_unless_asked():
    # fastai's wd_bn_bias=False: decay only pulls weights of linear maps and embeddings toward 0
    learn = tiny_learner(wd=0.1)
    learn.create_opt()
    wd_of = {id(p): g["weight_decay"] for g in learn.opt.param_groups for p in g["params"]}
    names = dict(learn.model.named_parameters())
    assert len(wd_of) == len(names)  # every parameter once
    for name, p in names.items():
        is_bn = name.startswith("body.1.") or isinstance(_module_of(learn.model, name), nn.BatchNorm1d)
        expected = 0.0 if is_bn or name.endswith(".bias") else 0.1
        assert wd_of[id(p)] == expected, name
    # each learner group (body, head) maps to its optimizer groups, and one rate per learner group
    assert sorted({g["learner_group"] for g in learn.opt.param_groups}) == [0, 1]
    assert learn.n_lr_groups == 2
    learn.fit(1, lr=[1e-4, 1e-2])
    assert all(g["lr"] == [1e-4, 1e-2][g["learner_group"]] for g in learn.opt.param_groups)
    with pytest.raises(CentaurError, match="3 learning rates for 2 parameter groups"):
        learn.fit(1, lr=[1e-4, 1e-3, 1e-2])
    everything = tiny_learner(wd=0.1, wd_bn_bias=True)
    everything.create_opt()
    assert all(g["weight_decay"] == 0.1 for g in everything.opt.param_groups)


def _module_of(model, param_name):
    return model.get_submodule(param_name.rsplit(".", 1)[0])


@pytest.mark.parametrize("dls, model, message", [
    ("data/emoji", None, "expected DataLoaders, got str"),
    (None, "lite0", "model must be a torch.nn.Module"),
])
def test_a_learner_says_what_it_was_given(dls, model, message):
    with pytest.raises(CentaurError, match=message):
        Learner(dls if dls is not None else color_dls(), model if model is not None else tiny_model())


def test_one_metric_or_one_callback_need_no_list():
    learn = tiny_learner(metrics="accuracy", cbs=CountBatches())
    learn.fit(1)
    counter = next(cb for cb in learn.cbs if isinstance(cb, CountBatches))
    assert "accuracy" in learn.epoch_log and counter.n == 4


class CountBatches(Callback):
    def __init__(self):
        self.n = 0

    def after_batch(self):
        self.n += self.learn.training
