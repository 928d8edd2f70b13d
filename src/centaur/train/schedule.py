"""Learning-rate and momentum schedules, as pure functions of the step (easy to resume)."""
import math


def cos_anneal(start, end, pct):
    """Cosine from start (pct=0) to end (pct=1)."""
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def one_cycle(step, total_steps, lr_max, div=25.0, div_final=1e5, pct_start=0.25, moms=(0.95, 0.85, 0.95)):
    """(lr, beta1) at `step` of a one-cycle policy (Smith 2018, arXiv:1803.09820).

    Warm up from lr_max/div to lr_max over pct_start of the steps, then anneal to
    lr_max/div_final, both by cosine; momentum moves the opposite way. The phase ends are
    those of torch.optim.lr_scheduler.OneCycleLR (tested against it), so the two agree.

    >>> lr, beta1 = one_cycle(0, 100, 1e-3)
    >>> round(lr, 12), beta1
    (4e-05, 0.95)
    """
    warm_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if step <= warm_end:
        pct = step / warm_end if warm_end > 0 else 1.0
        return cos_anneal(lr_max / div, lr_max, pct), cos_anneal(moms[0], moms[1], pct)
    pct = (step - warm_end) / (last - warm_end) if last > warm_end else 1.0
    return cos_anneal(lr_max, lr_max / div_final, pct), cos_anneal(moms[1], moms[2], pct)
