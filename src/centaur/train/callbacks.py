"""Callbacks: small objects that act at named events of the training loop.

The events form a closed set (EVENTS). A callback defines methods named after events; a
name that is not an event is refused when the callback is added, so a typo such as
`after_epcoh` fails loudly instead of never running.
"""
import math
import sys
import time

from ..core.errors import CentaurError, did_you_mean
from ..core.figures import new_figure, save_png
from .schedule import one_cycle

EVENTS = (
    "before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
    "before_backward", "after_backward", "before_step", "after_step", "after_batch", "after_train",
    "before_validate", "after_validate", "after_epoch", "after_fit",
)


class CancelBatch(Exception):
    """Raise in a callback to skip the rest of this batch."""


class CancelEpoch(Exception):
    """Raise in a callback to end this epoch early."""


class CancelFit(Exception):
    """Raise in a callback to stop training (early stopping does)."""


class Callback:
    """Base class. Subclasses define event methods; `self.learn` is the Learner.

    `order` sorts callbacks at an event (lower runs first).

    >>> class PrintLoss(Callback):
    ...     def after_batch(self):
    ...         print(self.learn.loss.item())
    """

    order = 0

    def check_events(self):
        """Refuse a method that looks like an event but is none (after_epcoh, befor_fit)."""
        import difflib
        for name in dir(type(self)):
            if name in EVENTS or name.startswith("_") or hasattr(Callback, name):
                continue
            looks_like_event = name.startswith(("before_", "after_")) or difflib.get_close_matches(
                name, EVENTS, n=1, cutoff=0.85)
            if looks_like_event and callable(getattr(type(self), name, None)):
                raise CentaurError(f"{type(self).__name__}.{name} is not a training event."
                                   f"{did_you_mean(name, EVENTS)} Events: {', '.join(EVENTS)}.")

    @property
    def name(self):
        return type(self).__name__


class OneCycle(Callback):
    """Sets lr and beta1 of every parameter group at each training step (see schedule.one_cycle)."""

    order = -10

    def __init__(self, lr_max, div=25.0, div_final=1e5, pct_start=0.25, moms=(0.95, 0.85, 0.95)):
        self.lr_max = lr_max if isinstance(lr_max, (list, tuple)) else None
        self.lr_single = lr_max
        self.div, self.div_final, self.pct_start, self.moms = div, div_final, pct_start, moms

    def before_batch(self):
        learn = self.learn
        if not learn.training:
            return
        lrs = self.lr_max or [self.lr_single]
        for group in learn.opt.param_groups:
            # several optimizer groups share a learner group (decayed or not): one rate each
            lr_max = lrs[group.get("learner_group", 0)] if len(lrs) > 1 else lrs[0]
            lr, beta1 = one_cycle(learn.step, learn.total_steps, lr_max, self.div, self.div_final,
                                  self.pct_start, self.moms)
            group["lr"] = lr
            group["betas"] = (beta1, group["betas"][1])


class Recorder(Callback):
    """Keeps losses, learning rates and metrics, per batch and per epoch; plots the losses."""

    order = 50

    def before_fit(self):
        if not hasattr(self, "losses") or not (self.learn.resuming or self.learn.continuing):
            self.losses, self.lrs, self.epochs = [], [], []

    def after_batch(self):
        if self.learn.training:
            self.losses.append(self.learn.loss_value)
            self.lrs.append(self.learn.opt.param_groups[-1]["lr"])

    def after_epoch(self):
        self.epochs.append(dict(self.learn.epoch_log))

    def epoch_ends(self):
        """Where each epoch ended, counted in training batches over the whole history: `step`
        restarts with each fit, so fine_tune's two phases drew their points on top of each other."""
        ends, offset, last = [], 0, 0
        for e in self.epochs:
            if e["step"] <= last:  # a new fit of the same history counts from its start again
                offset += last
            ends.append(offset + e["step"])
            last = e["step"]
        return ends

    def plot_loss(self, path=None):
        """The training loss per batch and validation loss per epoch: written to `path` (a PNG file;
        returns the path), or without one returned as PNG bytes, which a notebook shows."""
        fig, axes = new_figure(6, 4)
        ax = axes[0, 0]
        ax.plot(self.losses, label="train", alpha=0.7)
        if self.epochs:
            steps = self.epoch_ends()
            ax.plot(steps, [e["valid_loss"] for e in self.epochs], "o-", label="valid")
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.legend()
        png = save_png(fig, path)
        return png if path is None else path


class ProgressCallback(Callback):
    """A live progress bar with the running loss, and one line of metrics per epoch.

    In a terminal it uses rich; in a Jupyter notebook an HTML bar and a table of epochs that
    update in place (IPython display handles, so no widget extension is needed); in a log
    file it prints plain lines. notebook: None detects a notebook, True or False forces it.
    """

    order = 60

    def __init__(self, stream=None, notebook=None):
        self.stream, self.notebook = stream, notebook
        self.console, self.in_fit, self.bar = None, False, None

    def _setup(self):
        from rich.console import Console
        from .distributed import is_main_process
        quiet = not is_main_process()  # of several processes (torchrun), only the first reports
        self.console = Console(file=self.stream or sys.stderr, highlight=False, quiet=quiet)
        self.html = not quiet and (_in_notebook() if self.notebook is None else self.notebook)
        self.live = self.console.is_terminal and not self.html and not quiet
        self.header_done, self.rows, self.table = False, [], None
        self.bar_handle = None  # in a notebook: one bar, redrawn for every phase of the fit, above its table

    def before_fit(self):
        self._setup()
        self.in_fit = True

    def before_train(self):
        self._start_bar("train", len(self.learn.dls.train))

    def before_validate(self):
        self._start_bar("valid", len(self.learn.dls.valid))

    def _start_bar(self, what, total):
        if self.console is None:  # validate() outside fit
            self._setup()
        self.t0 = time.perf_counter()
        label = f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch} {what}" if self.in_fit else what
        if self.html:
            self.bar = _HtmlBar(label, total, self.bar_handle)
            self.bar_handle = self.bar.handle
        elif self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn(label), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.task = self.bar.add_task(what, total=total, info="")
            self.pending, self.sent = 0, time.perf_counter()
            self.bar.start()

    def after_batch(self):
        if self.bar is None:
            return
        if self.html:
            self.bar.advance(f"loss {self.learn.smooth_loss:.4f}" if self.learn.training else "")
            return
        # rich redraws 10 times a second anyway; telling it about every batch (thousands a second
        # on a table) costs more than the redraws, so batches are counted here and sent in bunches
        self.pending += 1
        now = time.perf_counter()
        if now - self.sent >= 0.1:
            self._send(now)

    def _send(self, now):
        info = f"loss {self.learn.smooth_loss:.4f}" if self.learn.training else ""
        self.bar.update(self.task, advance=self.pending, info=info)
        self.pending, self.sent = 0, now

    def _stop_bar(self):
        if self.bar is not None:
            if not self.html and self.pending:
                self._send(time.perf_counter())
            self.bar.stop()
            self.bar = None

    def after_train(self):
        self._stop_bar()

    def after_validate(self):
        self._stop_bar()

    def after_epoch(self):
        log = self.learn.epoch_log
        keys = [k for k in log if k not in ("step",)]
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else f"{v!s}"
        if self.html:
            self.rows.append([fmt(log[k]) for k in keys])
            self.table = _show_html(_html_table(keys, self.rows), self.table)
            return
        if not self.header_done:
            self.console.print("  ".join(f"{k:>11}" for k in keys))
            self.header_done = True
        self.console.print("  ".join(f"{fmt(log[k]):>11}" for k in keys))

    def after_fit(self):
        self._stop_bar()
        self.in_fit = False


def _in_notebook():
    """Whether we run inside a Jupyter kernel (IPython imported and a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _show_html(html, handle=None):
    """Show HTML in the notebook, or replace what `handle` shows; returns the handle."""
    from IPython.display import HTML, display
    if handle is None:
        return display(HTML(html), display_id=True)
    handle.update(HTML(html))
    return handle


def _html_table(keys, rows):
    from html import escape
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="centaur-epochs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class _HtmlBar:
    """A <progress> bar in a notebook cell, redrawn at most 10 times a second."""

    def __init__(self, label, total, handle=None):
        """handle: the display of an earlier bar of the same fit, redrawn rather than a new one added."""
        self.label, self.total, self.done, self.info = label, max(total, 1), 0, ""
        self.t0 = self.shown = time.perf_counter()
        self.handle = _show_html(self._html(), handle)

    def _html(self):
        from html import escape
        elapsed = time.perf_counter() - self.t0
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        return (f'<div class="centaur-progress">{escape(self.label)} <progress value="{self.done}" '
                f'max="{self.total}" style="width:300px"></progress> {self.done}/{self.total} '
                f'{escape(self.info)} [{elapsed:.0f}s elapsed, {left:.0f}s left]</div>')

    def advance(self, info=""):
        self.done, self.info = self.done + 1, info
        now = time.perf_counter()
        if now - self.shown >= 0.1 or self.done >= self.total:
            self.shown = now
            _show_html(self._html(), self.handle)

    def stop(self):
        _show_html(self._html(), self.handle)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs.

    It runs after CheckpointCallback, so the epoch that triggers the stop is saved too.
    """

    order = 90

    def __init__(self, monitor="valid_loss", patience=3, min_delta=0.0, mode=None):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = mode or ("min" if "loss" in monitor or "error" in monitor or monitor in ("rmse", "mae") else "max")

    def before_fit(self):
        self.best, self.wait = math.inf if self.mode == "min" else -math.inf, 0

    def after_epoch(self):
        value = _monitored(self.learn, self.monitor)
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                print(f"early stopping: no improvement in {self.monitor} for {self.patience} epochs", file=sys.stderr)
                raise CancelFit()


class SaveBest(Callback):
    """Keep the weights of the epoch with the best `monitor` and restore them when fit ends."""

    order = 65

    def __init__(self, monitor="valid_loss", mode=None):
        self.monitor = monitor
        self.mode = mode or ("min" if "loss" in monitor or "error" in monitor or monitor in ("rmse", "mae") else "max")

    def before_fit(self):
        self.best, self.best_state, self.best_epoch = (math.inf if self.mode == "min" else -math.inf), None, None

    def after_epoch(self):
        value = _monitored(self.learn, self.monitor)
        if (value < self.best) if self.mode == "min" else (value > self.best):
            self.best, self.best_epoch = value, self.learn.epoch
            self.best_state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}

    def after_fit(self):
        if self.best_state is not None:
            self.learn.model.load_state_dict(self.best_state)


class CheckpointCallback(Callback):
    """Save model, optimizer and position after every epoch, so a crash or Ctrl-C loses at most one."""

    # after Recorder (50) has the epoch's numbers, before ProgressCallback (60) prints its row: a
    # Ctrl-C right after a row appears must find that epoch saved
    order = 55

    def __init__(self, path):
        self.path = path

    def after_epoch(self):
        from .checkpoint import save_checkpoint
        from .distributed import is_main_process
        if is_main_process():  # of several processes (torchrun), only the first writes; all hold the same state
            save_checkpoint(self.learn, self.path)


def _monitored(learn, monitor):
    if monitor not in learn.epoch_log:
        raise CentaurError(f"cannot monitor {monitor!r}; the epoch log has {list(learn.epoch_log)}."
                           f"{did_you_mean(monitor, learn.epoch_log)}")
    return learn.epoch_log[monitor]
