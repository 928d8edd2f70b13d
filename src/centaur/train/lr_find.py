"""The learning-rate finder: raise the rate exponentially until the loss blows up (Smith 2015)."""
import copy
import math
import os
from typing import NamedTuple

import numpy as np

from ..core.errors import CentaurError
from ..core.figures import new_figure, save_png
from ..core.log import logger
from .learner import SmoothLoss


def lr_find(learn, start_lr=1e-7, end_lr=10.0, num_it=100, plot=None):
    """Train a few batches at rising rates, then put weights back; return LRFind (suggestion, lrs, losses).

    The suggestion is fastai's "valley": two thirds along the longest stretch where the
    smoothed loss keeps falling, which is less fragile than the steepest point. The model
    and optimizer are restored afterwards. plot: a PNG path for the loss-vs-rate curve.
    """
    if len(learn.dls.train) == 0:
        raise CentaurError("lr_find needs at least one training batch; the training set is empty or smaller "
                           "than the batch size with drop_last.")
    if isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 2:
        raise CentaurError(f"lr_find needs num_it, the number of rates to try, as a whole number of at least 2; "
                           f"got {num_it!r}.")
    if plot is not None and not isinstance(plot, (str, os.PathLike)):
        raise CentaurError(f"plot is the path of a PNG file to draw the curve in (or None), got {plot!r}.")
    if not 0 < start_lr < end_lr:
        raise CentaurError(f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}.")
    was_training = learn.model.training
    saved_model = copy.deepcopy(learn.model.state_dict())
    if learn.opt is None:
        learn.create_opt()
    saved_opt = copy.deepcopy(learn.opt.state_dict())
    lrs, losses, smooth, best = [], [], SmoothLoss(), math.inf
    # Ctrl-C or an error mid-search must not leave the perturbed weights behind
    try:
        learn.model.train()
        it = 0
        while it < num_it:
            for xb, yb in learn.dls.train:
                lr = start_lr * (end_lr / start_lr) ** (it / max(1, num_it - 1))
                for group in learn.opt.param_groups:
                    group["lr"] = lr
                loss = learn.loss_func(learn.forward(learn.to_device(xb)), learn.to_device(yb))
                loss.backward()
                learn.opt.step()
                learn.opt.zero_grad(set_to_none=True)
                debiased = smooth.add(loss.item())
                lrs.append(lr)
                losses.append(debiased)
                best = min(best, debiased)
                it += 1
                if it >= num_it or not math.isfinite(debiased) or debiased > 4 * best:
                    it = num_it
                    break
    finally:
        learn.model.load_state_dict(saved_model)
        learn.opt.load_state_dict(saved_opt)
        learn.model.train(was_training)
    suggestion = valley(lrs, losses)
    logger.info(f"lr_find: suggested learning rate {suggestion:.2e} (exactly {suggestion!r})")
    found = LRFind(suggestion, lrs, losses)
    if plot:
        found.plot(plot)
    return found


class LRFind(NamedTuple):
    """What lr_find found; unpacks as (suggestion, lrs, losses), and a notebook shows the curve.

    >>> LRFind(1e-3, [1e-7, 1e-3, 10.0], [2.3, 1.9, 9.0])
    LRFind(suggestion=1.00e-03: 3 rates tried from 1e-07 to 1e+01)
    """
    suggestion: float
    lrs: list
    losses: list

    def __repr__(self):
        tried = f"{len(self.lrs)} rates tried from {self.lrs[0]:.0e} to {self.lrs[-1]:.0e}" if self.lrs else "none tried"
        return f"LRFind(suggestion={self.suggestion:.2e}: {tried})"

    def plot(self, path=None):
        """The smoothed loss against the rate, the suggestion marked: PNG bytes, also written to `path`."""
        return _plot(self.lrs, self.losses, self.suggestion, path)

    def _repr_png_(self):
        return bytes(self.plot())


def valley(lrs, losses):
    """The rate 2/3 along the longest run of decreasing loss (fastai's valley heuristic)."""
    n = len(losses)
    if n < 3:
        return lrs[0] if lrs else 1e-3
    losses = np.asarray(losses)
    run = np.ones(n, dtype=int)  # run[i]: longest decreasing sequence ending at i
    prev = np.full(n, -1)
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[j] + 1 > run[i]:
                run[i], prev[i] = run[j] + 1, j
    end = int(run.argmax())
    start = end
    while prev[start] != -1:
        start = prev[start]
    idx = start + int((end - start) * 2 / 3)
    return float(lrs[idx])


def _plot(lrs, losses, suggestion, path):
    fig, axes = new_figure(6, 4)
    ax = axes[0, 0]
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="red", linestyle="--", label=f"suggestion {suggestion:.1e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ax.legend()
    return save_png(fig, path)
