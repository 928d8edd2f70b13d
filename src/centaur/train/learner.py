"""The Learner: a model, its data, an optimizer and a training loop with events for callbacks."""
import contextlib
import math
import numbers
import time
from pathlib import Path

import torch

from ..core.device import resolve_device
from ..core.errors import CentaurError, did_you_mean
from .callbacks import (EVENTS, CancelBatch, CancelEpoch, CancelFit, Callback, CheckpointCallback, OneCycle,
                        ProgressCallback, Recorder)
from .metrics import METRICS, metric_name


class TrainingInterrupted(CentaurError):
    """Training was stopped by Ctrl-C; the last finished epoch is in the checkpoint."""


class Learner:
    """Trains `model` on `dls`; callbacks act at the events in callbacks.EVENTS.

    param_groups: lists of parameters that get their own learning rate (body, head), so
    fine-tuning can train the pretrained body slower than the new head.
    wd: AdamW's decoupled weight decay; wd_bn_bias=True also decays batch norm and bias
    parameters (off by default, as in fastai).
    device: where the model trains; None takes this process's CUDA GPU where there is one
    (under torchrun: the GPU of its LOCAL_RANK), else the CPU; or "cpu", "cuda", "cuda:1", a
    torch.device. The model moves there now; every batch moves there as it is used, and
    predictions come back to the CPU for metrics, callbacks and the caller.

    >>> learn = Learner(dls, model, metrics=["accuracy"])  # doctest: +SKIP
    >>> learn.fit_one_cycle(3, 1e-3)                        # doctest: +SKIP
    """

    def __init__(self, dls, model, loss_func=None, metrics=(), cbs=(), wd=0.01, path="runs",
                 param_groups=None, progress=True, wd_bn_bias=False, device=None):
        check_dataloaders(dls)
        if not isinstance(model, torch.nn.Module):
            raise CentaurError(f"model must be a torch.nn.Module, got {type(model).__name__} {model!r}; for an "
                               "architecture by name use vision_learner(dls, 'lite0') or create_classifier.")
        metrics = [metrics] if isinstance(metrics, str) or callable(metrics) else metrics  # one metric alone
        cbs = [cbs] if isinstance(cbs, Callback) else cbs
        self.device = resolve_device(device)
        # Module.to moves parameters in place, so param_groups built before still hold them
        self.dls, self.model, self.wd, self.path = dls, model.to(self.device), wd, Path(path)
        self.wd_bn_bias = wd_bn_bias
        self.loss_func = loss_func or dls.y_block.loss_func()
        if isinstance(self.loss_func, torch.nn.Module):
            self.loss_func.to(self.device)  # its tensors (class weights, pos_weight) meet the predictions there
        self.metrics = [self._metric(m) for m in metrics]
        self.param_groups = param_groups or [list(model.parameters())]
        self.cbs, self.opt = [], None
        self.step, self.epoch, self.n_epoch, self.phase = 0, 0, 0, 0
        self.training, self.resuming, self.plan = False, False, None
        self.continuing = False  # True while a fit continues an earlier one (fine_tune's 2nd phase)
        self.epoch_log, self.smooth_loss = {}, float("nan")
        self._smooth = SmoothLoss()  # behind smooth_loss
        self.add_cbs([Recorder()] + ([ProgressCallback()] if progress else []) + list(cbs))

    @staticmethod
    def _metric(m):
        if callable(m):
            return m
        if m not in METRICS:
            raise CentaurError(f"unknown metric {m!r}; known: {', '.join(METRICS)}.{did_you_mean(m, METRICS)}")
        return METRICS[m]

    # --- callbacks ---

    def add_cbs(self, cbs):
        """Add callbacks (instances or classes); returns the instances added.

        All are checked before any is added, so a refused one leaves the Learner as it was. One
        already attached is not attached again (it would run twice on every event).
        """
        added = []
        for cb in (cbs if isinstance(cbs, (list, tuple)) else [cbs]):
            cb = cb() if isinstance(cb, type) else cb
            if not any(cb is c for c in self.cbs + added):
                added.append(cb)
        names = {}
        for cb in added:
            if not isinstance(cb, Callback):
                raise CentaurError(f"{cb!r} is not a Callback; subclass centaur.train.callbacks.Callback.")
            cb.check_events()
            attr = _snake(cb.name)
            # a callback is reachable as learn.<snake_name> (learn.recorder), but must never hide
            # a part of the Learner: a callback class named `Model` would replace learn.model
            current = getattr(self, attr, None)
            if current is not None and not isinstance(current, Callback):
                raise CentaurError(f"a callback named {cb.name!r} would hide Learner.{attr}; rename the class.")
            names[id(cb)] = attr
        for cb in added:
            cb.learn = self
            self.cbs.append(cb)
            setattr(self, names[id(cb)], cb)
        self.cbs.sort(key=lambda c: c.order)
        return added

    def remove_cbs(self, cbs):
        """Detach callbacks: instances, or classes (every attached one of that class)."""
        cbs = cbs if isinstance(cbs, (list, tuple)) else [cbs]
        found = [c for cb in cbs for c in self.cbs if c is cb or (isinstance(cb, type) and type(c) is cb)]
        missing = [cb for cb in cbs if not any(c is cb or type(c) is cb for c in found)]
        if missing:
            names = ", ".join(getattr(cb, "__name__", None) or type(cb).__name__ for cb in missing)
            raise CentaurError(f"{names} is not attached to this Learner; attached are: "
                               f"{', '.join(type(c).__name__ for c in self.cbs)}.")
        for cb in dict.fromkeys(found):
            self.cbs.remove(cb)
            attr = _snake(cb.name)
            if getattr(self, attr, None) is cb:
                # another callback of the same class, if any, takes the name back
                same = [c for c in self.cbs if _snake(c.name) == attr]
                if same:
                    setattr(self, attr, same[-1])
                else:
                    delattr(self, attr)

    @contextlib.contextmanager
    def added_cbs(self, cbs):
        added = self.add_cbs(cbs)
        try:
            yield
        finally:
            self.remove_cbs(added)

    def __call__(self, event):
        for cb in self.cbs:
            method = getattr(cb, event, None)
            if method is not None:
                method()

    @property
    def dls(self):
        return self._dls

    @dls.setter
    def dls(self, dls):
        """New DataLoaders (progressive resizing, more data: `learn.dls = ...`) are prepared as the
        first were: a pretrained image model's inputs normalized as its weights expect (without it
        the model trained on raw pixels, unsaid until export), batches augmented where the model is."""
        prep = getattr(self, "preprocessing", None) or {}
        train = getattr(dls, "train", None)
        if prep.get("mean") is not None and hasattr(dls, "set_normalization") and getattr(train, "mean", 0) is None:
            dls.set_normalization(prep["mean"], prep["std"])
        if hasattr(dls, "to"):  # image batches are augmented where the model is (a GPU: as fastai does)
            dls.to(self.device)
        self._dls = dls

    def show_training_loop(self):
        """Print which callbacks run at which event, in order (a debugging aid)."""
        lines = []
        for event in EVENTS:
            names = [cb.name for cb in self.cbs if getattr(cb, event, None) is not None]
            lines.append(f"{event:<16} {', '.join(names) if names else '-'}")
        print("\n".join(lines))

    # --- optimizer and freezing ---

    def create_opt(self):
        """AdamW over the parameter groups; each group is split in two for weight decay.

        Weight decay is decoupled from the gradient step (Loshchilov & Hutter, arXiv:1711.05101);
        betas and eps are fastai's defaults, which suit one-cycle training. As fastai does
        (wd_bn_bias=False), batch norm weights and biases and every bias are not decayed:
        decay pulls a norm layer's scale toward 0 and a bias toward 0, neither of which is
        a simpler model. So learner group i becomes optimizer groups with
        `"learner_group": i` (decayed, then not decayed); fit and OneCycle set one lr per
        learner group. The fused CPU/GPU kernel updates all tensors of a group in one call
        (fastai uses foreach-style updates too), several times faster than a Python loop.
        """
        no_decay = set() if self.wd_bn_bias else _no_decay_ids(self.model)
        groups = []
        for i, params in enumerate(self.param_groups):
            params = list(params)
            decay = [p for p in params if id(p) not in no_decay]
            rest = [p for p in params if id(p) in no_decay]
            for part, wd in ((decay, self.wd), (rest, 0.0)):
                if part:
                    groups.append({"params": part, "weight_decay": wd, "learner_group": i})
        kind = _update_kind([p for g in groups for p in g["params"]])
        self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=self.wd, **kind)

    def set_lrs(self, lrs):
        """Set the learning rate of every optimizer group from one rate per learner group."""
        for group in self.opt.param_groups:
            group["lr"] = lrs[group.get("learner_group", 0)] if len(lrs) > 1 else lrs[0]

    @property
    def n_lr_groups(self):
        """How many learning rates fit and fit_one_cycle take: one per learner parameter group."""
        if self.opt is None:
            return len(self.param_groups)
        return max(g.get("learner_group", 0) for g in self.opt.param_groups) + 1

    def freeze(self):
        """Train only the last parameter group (the head); the body keeps its pretrained weights."""
        self._set_trainable(len(self.param_groups) - 1)

    def unfreeze(self):
        self._set_trainable(0)

    def _set_trainable(self, first):
        for i, group in enumerate(self.param_groups):
            for p in group:
                p.requires_grad_(i >= first)
        if hasattr(self.model, "frozen"):
            self.model.frozen = first > 0

    # --- the loop ---

    def fit(self, n_epoch, lr=1e-3, cbs=(), start_epoch=0):
        """Train for n_epoch epochs at a constant lr (or as callbacks such as OneCycle set it)."""
        if not isinstance(n_epoch, int) or n_epoch < 1:
            raise CentaurError(f"the number of epochs must be a positive integer, got {n_epoch!r}.")
        if self.opt is None:
            self.create_opt()
        lrs = self.learning_rates(lr)
        self.set_lrs(lrs)
        self.n_epoch = n_epoch
        self.total_steps = n_epoch * len(self.dls.train)
        self.step = start_epoch * len(self.dls.train)
        self._smooth = SmoothLoss()  # each fit's progress bar starts from its own losses
        with self.added_cbs(list(cbs)):
            try:
                self("before_fit")
                for epoch in range(start_epoch, n_epoch):
                    self.epoch = epoch
                    try:
                        self._do_epoch()
                    except CancelEpoch:
                        # the epoch ends here: what before_train set up (a progress bar, DDP's wrapper) is
                        # undone by after_train; validation and after_epoch are skipped
                        if self.training:
                            self.training = False
                            self("after_train")
            except CancelFit:
                pass
            except KeyboardInterrupt:
                self("after_fit")
                where = self._checkpoint_path()
                if where is None:
                    hint = (" No checkpoint was being written (give fine_tune or fit_one_cycle a checkpoint= file "
                            "to make runs resumable).")
                elif not where.exists():
                    hint = " No epoch had finished, so there is no checkpoint to resume from."
                else:
                    hint = (f" The last finished epoch is saved in {where}; run the same command with --resume "
                            "(from Python: fine_tune or fit_one_cycle with checkpoint=..., resume=True) to go on from there.")
                raise TrainingInterrupted(f"training stopped by Ctrl-C in epoch {self.epoch + 1}.{hint}") from None
            self("after_fit")
        self.resuming = False

    def learning_rates(self, lr):
        """One rate per parameter group from a number, a list (one per group) or fastai's slice(low, high)
        (rates spread evenly on a log scale from the first group to the last). Checked: positive, finite.

        >>> learn.learning_rates(slice(1e-5, 1e-3))  # two groups: body, head  # doctest: +SKIP
        [1e-05, 0.001]
        """
        n = self.n_lr_groups
        if isinstance(lr, slice):
            low, high = lr.start, lr.stop
            if high is None or lr.step is not None:
                raise CentaurError(f"a slice of learning rates is slice(low, high) or slice(high), got {lr!r}.")
            if n == 1:
                lrs = [high]
            elif low is None:  # fastai: the head at high, every other group at a tenth of it
                lrs = [high / 10] * (n - 1) + [high]
            elif _positive(low) and _positive(high):
                lrs = [float(x) for x in torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)]
            else:
                lrs = [low, high]  # refused just below, naming the value
        elif isinstance(lr, (list, tuple)):
            lrs = list(lr)
        else:
            lrs = [lr] * n
        for value in lrs:
            if not _positive(value):
                raise CentaurError(f"learning rates must be positive numbers such as 1e-3, got {value!r} (from "
                                   f"{lr!r}); a negative rate climbs the loss instead of descending it.")
        if len(lrs) != n:
            raise CentaurError(f"got {len(lrs)} learning rates for {n} parameter groups; "
                               "give one rate, or one per parameter group (body, head).")
        return [float(v) for v in lrs]

    def _checkpoint_path(self):
        for cb in self.cbs:
            if isinstance(cb, CheckpointCallback):
                return Path(cb.path)
        return None

    def _do_epoch(self):
        t0 = time.perf_counter()
        self("before_epoch")
        self.training = True
        self.model.train()
        self("before_train")
        losses = []
        for xb, yb in self.dls.train:
            try:
                self._do_batch(xb, yb)
                losses.append(self.loss_value)
            except CancelBatch:
                pass
        self("after_train")
        self.training = False
        valid_loss, preds, targets = self._validate()
        self.epoch_log = {"epoch": self.epoch + 1,
                          "train_loss": float(sum(losses) / len(losses)) if losses else float("nan"),
                          "valid_loss": valid_loss}
        for m in self.metrics:
            self.epoch_log[metric_name(m)] = float(m(preds, targets))
        self.epoch_log["time"] = _fmt_time(time.perf_counter() - t0)
        self.epoch_log["step"] = self.step
        self("after_epoch")

    def _do_batch(self, xb, yb):
        # gradients left by a batch cancelled after backward must not leak into this one
        self.opt.zero_grad(set_to_none=True)
        self.xb, self.yb = self.to_device(xb), self.to_device(yb)
        self("before_batch")
        self.pred = self.forward(self.xb)
        self("after_pred")
        self.loss = self.loss_func(self.pred, self.yb)
        self("after_loss")
        self("before_backward")
        self.loss.backward()
        self("after_backward")
        self("before_step")
        self.opt.step()
        self("after_step")
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        # a running average keeps the progress bar's loss readable; loss_value is the batch's loss
        # as a float, read once for every callback that wants it
        loss = self.loss_value = self.loss.item()
        self.smooth_loss = self._smooth.add(loss)
        self("after_batch")

    def to_device(self, batch):
        """A batch (a tensor, or a tuple or list of them: a table's categorical and continuous
        columns) on the Learner's device; on the CPU already, the same tensors, not copies."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.to_device(b) for b in batch)
        return batch.to(self.device, non_blocking=True)

    def forward(self, xb):
        """Run the model on a batch: one tensor (images) or a tuple of tensors (a table's
        categorical and continuous columns), passed as separate arguments."""
        return self.model(*xb) if isinstance(xb, (tuple, list)) else self.model(xb)

    def _validate(self, dl=None):
        dl = dl or self.dls.valid
        self.model.eval()
        self("before_validate")
        preds, targets = [], []
        with torch.inference_mode():
            for xb, yb in dl:
                self.xb, self.yb = self.to_device(xb), self.to_device(yb)
                self.pred = self.forward(self.xb)
                preds.append(self.pred)
                targets.append(self.yb)
                try:
                    self("after_batch")
                except CancelBatch:  # as in training: the rest of this batch's events are skipped
                    pass
        # after_validate may replace these: under DDP each process holds its share of the
        # validation set, and train/distributed.py gathers all of them before loss and metrics
        self.preds, self.targets = torch.cat(preds), torch.cat(targets)
        self("after_validate")
        loss = float(self.loss_func(self.preds, self.targets))  # where the loss lives, with the model
        # then to the CPU, once per epoch rather than per batch: metrics use NumPy and scikit-learn
        self.preds, self.targets = self.preds.cpu(), self.targets.cpu()
        return loss, self.preds, self.targets

    def validate(self):
        """Validation loss and metrics of the current model, as a dict."""
        loss, preds, targets = self._validate()
        return {"valid_loss": loss, **{metric_name(m): float(m(preds, targets)) for m in self.metrics}}

    def predict(self, item, top_k=3):
        """Predict one item as validation data is prepared: an image (path, bytes, Pillow image or
        array) for an image model, a row (dict, Series or one-row DataFrame) for a table model.

        Returns what Predictor.predict does for the exported model: {'label', 'probability',
        'top_k'}, {'labels', 'probabilities'} for several labels, or {'value'}.

        >>> learn.predict("cat.jpg")["label"]  # doctest: +SKIP
        'animal'
        """
        from ..models.outputs import activate, check_top_k, describe, task_of
        check_top_k(top_k)
        task = task_of(self.dls.y_block)
        from ..data.tabular import TabularDataLoaders, rows_frame
        if isinstance(self.dls, TabularDataLoaders):
            import pandas as pd
            row = rows_frame(item)
            if not isinstance(row, pd.DataFrame) or len(row) != 1:
                raise CentaurError(f"a table model predicts one row: a dict, a pandas Series or a one-row DataFrame, "
                                   f"not {type(item).__name__}{f' of {len(row)} rows' if hasattr(row, '__len__') else ''}"
                                   "; for many rows use get_preds(dls.test_dl(df)).")
            dl = self.dls.test_dl(row.reset_index(drop=True))
        else:
            if isinstance(item, (list, tuple)):
                raise CentaurError("predict takes one image; for many use get_preds(dls.test_dl(items)).")
            dl = self.dls.test_dl([item], bs=1)
        out, _ = self.get_preds(dl)
        return describe(activate(out.float(), task)[0], task, getattr(self.dls.y_block, "vocab", None), top_k)

    def export(self, path, **kwargs):
        """Write the model directory `path` (model.safetensors + model.json; see train/export.py)."""
        from .export import export
        return export(self, path, **kwargs)

    def __repr__(self):
        trained = f"{self.epoch + 1} epoch(s) of the last fit" if self.epoch_log else "not trained yet"
        return (f"Learner({type(self.model).__name__} on {self.device}, "
                f"{sum(p.numel() for p in self.model.parameters()):,} parameters, {len(self.dls.train)} training "
                f"batches, metrics: {', '.join(metric_name(m) for m in self.metrics) or 'none'}; {trained})")

    def get_preds(self, dl=None):
        """(raw outputs, targets) for a DataLoader (validation by default), without callbacks."""
        dl = dl or self.dls.valid
        self.model.eval()
        preds, targets = [], []
        with torch.inference_mode():
            for xb, yb in dl:
                preds.append(self.forward(self.to_device(xb)))
                targets.append(yb)
        return torch.cat(preds).cpu(), torch.cat(targets)

    # --- policies ---

    def fit_one_cycle(self, n_epoch, lr_max=1e-3, div=25.0, div_final=1e5, pct_start=0.25,
                      moms=(0.95, 0.85, 0.95), cbs=(), start_epoch=0, checkpoint=None, resume=False):
        """Train with the one-cycle policy (warm up, then anneal; momentum the other way).

        lr_max: one rate, or one per parameter group (body, head) for discriminative rates.
        checkpoint: a file to save after every epoch; resume=True goes on from it (as fine_tune).

        >>> learn.fit_one_cycle(5, 1e-2, checkpoint="runs/ckpt.safetensors", resume=True)  # doctest: +SKIP
        """
        if not isinstance(n_epoch, int) or isinstance(n_epoch, bool) or n_epoch < 1:
            raise CentaurError(f"the number of epochs must be a positive integer, got {n_epoch!r}.")
        if not 0 < pct_start <= 1 or not div > 0 or not div_final > 0:
            raise CentaurError(f"fit_one_cycle needs 0 < pct_start <= 1 and positive div, div_final; got "
                               f"pct_start={pct_start!r}, div={div!r}, div_final={div_final!r}.")
        lrs = self.learning_rates(lr_max)
        lr_max = lrs[0] if len(lrs) == 1 and not isinstance(lr_max, (list, tuple, slice)) else lrs
        if checkpoint is not None or resume:
            plan = {"method": "fit_one_cycle", "epochs": n_epoch,
                    "lr_max": list(lr_max) if isinstance(lr_max, (list, tuple)) else lr_max, "div": div,
                    "div_final": div_final, "pct_start": pct_start, "batches_per_epoch": len(self.dls.train),
                    **self._data_plan()}
            if resume:
                from .checkpoint import load_checkpoint
                start_epoch = load_checkpoint(self, checkpoint, plan)["epoch"] + 1
            self.plan = plan
            cbs = [CheckpointCallback(checkpoint), *cbs]
        cycle = OneCycle(lr_max, div, div_final, pct_start, moms)
        self.fit(n_epoch, lr_max, cbs=[cycle, *cbs], start_epoch=start_epoch)

    def _data_plan(self):
        # the data itself (files, split, transforms) where the loaders can say it: another seed,
        # size or folder must not resume a checkpoint of this one
        fingerprint = getattr(self.dls, "fingerprint", None)
        return {"data": fingerprint()} if callable(fingerprint) else {}

    def fine_tune(self, epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0,
                  cbs=(), checkpoint=None, resume=False):
        """Transfer learning: train the new head with the body frozen, then everything together.

        The body then trains at base_lr/lr_mult and the head at base_lr (discriminative rates:
        early layers hold general features that need little change; Howard & Ruder 2018).
        checkpoint: a file to save after every epoch; resume=True goes on from it.
        """
        for name, value, least in (("epochs", epochs, 1), ("freeze_epochs", freeze_epochs, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise CentaurError(f"fine_tune's {name} must be a whole number of at least {least}, got {value!r}.")
        self.learning_rates(base_lr)
        if not _positive(lr_mult):
            raise CentaurError(f"lr_mult (how much slower the body trains than the head) must be positive, "
                               f"got {lr_mult!r}.")
        # batches per epoch place each step on the one-cycle schedule: a resume with another batch
        # size or other data would land somewhere else on it, so it is part of the plan
        plan = {"method": "fine_tune", "epochs": epochs, "freeze_epochs": freeze_epochs, "base_lr": base_lr,
                "lr_mult": lr_mult, "pct_start": pct_start, "div": div, "batches_per_epoch": len(self.dls.train),
                **self._data_plan()}
        start_phase, start_epoch = 0, 0
        if resume:
            from .checkpoint import load_checkpoint
            state = load_checkpoint(self, checkpoint, plan)
            start_phase, start_epoch = state["phase"], state["epoch"] + 1
            phase_epochs = freeze_epochs if start_phase == 0 else epochs
            if start_epoch >= phase_epochs:
                start_phase, start_epoch = start_phase + 1, 0
        self.plan = plan
        extra = [CheckpointCallback(checkpoint)] if checkpoint else []
        if start_phase == 0 and freeze_epochs > 0:
            self.phase = 0
            self.freeze()
            self.fit_one_cycle(freeze_epochs, base_lr, pct_start=0.99, cbs=[*extra, *cbs], start_epoch=start_epoch)
            start_epoch = 0
        if start_phase <= 1:
            self.phase = 1
            self.unfreeze()
            lr = base_lr / 2
            lrs = [lr / lr_mult] * (len(self.param_groups) - 1) + [lr]
            self.continuing = start_phase == 0 and freeze_epochs > 0  # one history for both phases
            try:
                self.fit_one_cycle(epochs, lrs, pct_start=pct_start, div=div, cbs=[*extra, *cbs],
                                   start_epoch=start_epoch)
            finally:
                self.continuing = False

    def lr_find(self, start_lr=1e-7, end_lr=10.0, num_it=100, plot=None):
        """Try rising learning rates on a copy of the weights; suggest one (see lr_find.py)."""
        from .lr_find import lr_find
        return lr_find(self, start_lr, end_lr, num_it, plot)


# Layers whose parameters are scales and shifts, never decayed (fastai's wd_bn_bias=False)
_NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)


def _no_decay_ids(model):
    """ids of the parameters of normalization layers and of every bias."""
    ids = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, _NORM_LAYERS) or name == "bias":
                ids.add(id(p))
    return ids


def _update_kind(params):
    """fused=True where PyTorch has the fused AdamW kernel for these tensors, else foreach.

    torch's own default on CPU is a Python loop over the tensors, one small update each;
    on a tabular model (many small tensors) that loop alone took as long as the backward pass.
    """
    devices = {p.device.type for p in params}
    if all(p.is_floating_point() for p in params) and devices <= {"cpu", "cuda", "mps", "xpu"}:
        return {"fused": True}
    return {"foreach": True}


def _snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _fmt_time(seconds):
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


class SmoothLoss:
    """fastai's running loss: an exponential average started at 0 and divided by 1 - beta^n, so
    the first batches do not outweigh the rest (started at the first loss and divided as well, the
    first values came out up to 50x too high).

    >>> s = SmoothLoss(); round(s.add(2.0), 6), round(s.add(1.0), 4)
    (2.0, 1.4949)
    """

    def __init__(self, beta=0.98):
        self.beta, self.avg, self.n = beta, 0.0, 0

    def add(self, value):
        """Take one more loss; returns the smoothed loss so far."""
        self.avg, self.n = self.beta * self.avg + (1 - self.beta) * value, self.n + 1
        return self.avg / (1 - self.beta ** self.n)


def _positive(value):
    """A finite number above zero (not a bool, not text)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) and value > 0


def check_dataloaders(dls):
    """CentaurError unless dls looks like DataLoaders (a train and a valid loader, the y block)."""
    if not all(hasattr(dls, name) for name in ("train", "valid", "y_block")):
        hint = (" (a DataBlock: call its .dataloaders(source) first)" if hasattr(dls, "dataloaders") else
                " (a path or table: build DataLoaders from it with a DataBlock's .dataloaders(source))")
        raise CentaurError(f"expected DataLoaders, got {type(dls).__name__}{hint}.")
