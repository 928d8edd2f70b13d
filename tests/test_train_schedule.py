"""One-cycle schedule: the pure function and the OneCycle callback against torch's OneCycleLR (the oracle)."""
import pytest
import torch
from torch import nn

from centaur.data.blocks import CategoryBlock, TensorImageBlock
from centaur.data.loaders import DataLoaders, Datasets
from centaur.train.callbacks import Callback
from centaur.train.learner import Learner
from centaur.train.schedule import one_cycle


def torch_one_cycle(lr_maxes, total_steps, div=25.0, div_final=1e5, pct_start=0.25):
    """[(lr per group, beta1 per group)] at each step, from torch.optim.lr_scheduler.OneCycleLR."""
    params = [nn.Parameter(torch.zeros(1)) for _ in lr_maxes]
    opt = torch.optim.AdamW([{"params": [p]} for p in params], lr=1e-3, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=list(lr_maxes), total_steps=total_steps, pct_start=pct_start, anneal_strategy="cos",
        div_factor=div, final_div_factor=div_final / div, three_phase=False, cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95)
    out = []
    for i in range(total_steps):
        out.append(([g["lr"] for g in opt.param_groups], [g["betas"][0] for g in opt.param_groups]))
        opt.step()
        if i < total_steps - 1:
            sched.step()
    return out


@pytest.mark.parametrize("total_steps", [1, 2, 3, 7, 10, 37, 100, 1000])
@pytest.mark.parametrize("pct_start", [0.0, 0.25, 0.3, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("div,div_final", [(25.0, 1e5), (5.0, 1e4)])
def test_one_cycle_matches_torch_one_cycle_lr(total_steps, pct_start, div, div_final):
    if float(pct_start * total_steps) - 1 == 0:
        pytest.skip("torch's OneCycleLR divides by zero when the warm-up is exactly one step")
    lr_max = 3e-3
    ref = torch_one_cycle([lr_max], total_steps, div, div_final, pct_start)
    for step, (lrs, moms) in enumerate(ref):
        lr, beta1 = one_cycle(step, total_steps, lr_max, div, div_final, pct_start)
        assert lr == pytest.approx(lrs[0], rel=1e-9, abs=0), (step, lr, lrs[0])
        assert beta1 == pytest.approx(moms[0], rel=1e-9, abs=0), (step, beta1, moms[0])


def test_one_cycle_shape():
    lrs = [one_cycle(i, 100, 1e-2)[0] for i in range(100)]
    assert lrs[0] == pytest.approx(1e-2 / 25)
    assert max(lrs) == pytest.approx(1e-2, rel=1e-3)
    assert lrs[-1] == pytest.approx(1e-2 / 1e5)
    peak = lrs.index(max(lrs))
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))  # rises, then falls
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    # one warm-up step (where torch divides by zero) starts at the peak instead of failing
    assert one_cycle(0, 10, 1e-2, pct_start=0.1)[0] == pytest.approx(1e-2)


def _tiny_dls(n_train=40, n_valid=8, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = list(torch.randint(0, 256, (n_train + n_valid, 3, 4, 4), generator=g, dtype=torch.uint8))
    ys = ["a" if i % 2 else "b" for i in range(n_train + n_valid)]
    y_block = CategoryBlock()
    y_block.setup(ys)
    train = Datasets(xs[:n_train], ys[:n_train], TensorImageBlock(), y_block, [], train=True)
    valid = Datasets(xs[n_train:], ys[n_train:], TensorImageBlock(), y_block, [], train=False)
    return DataLoaders(train, valid, bs=bs, seed=seed)


class _RecordGroups(Callback):
    """The lr and beta1 of every parameter group at each training step, as the optimizer used them."""

    def before_fit(self):
        self.seen = []

    def before_step(self):
        # one entry per learner group: its decayed and not-decayed optimizer groups move together
        groups = {}
        for g in self.learn.opt.param_groups:
            assert groups.setdefault(g["learner_group"], (g["lr"], g["betas"][0])) == (g["lr"], g["betas"][0])
        self.seen.append(([groups[i][0] for i in sorted(groups)], [groups[i][1] for i in sorted(groups)]))


def _two_group_learner():
    torch.manual_seed(0)
    body, head = nn.Sequential(nn.Flatten(), nn.Linear(48, 8)), nn.Linear(8, 2)
    model = nn.Sequential(body, head)
    return Learner(_tiny_dls(), model, param_groups=[list(body.parameters()), list(head.parameters())],
                   progress=False)


@pytest.mark.parametrize("pct_start", [0.25, 0.5])
def test_one_cycle_callback_drives_the_optimizer_like_torch(pct_start):
    learn = _two_group_learner()
    rec = _RecordGroups()
    lr_maxes = [1e-4, 1e-2]  # discriminative: body, head
    learn.fit_one_cycle(3, lr_maxes, div=10.0, div_final=1e4, pct_start=pct_start, cbs=[rec])
    total = 3 * len(learn.dls.train)
    assert len(rec.seen) == total == 15
    ref = torch_one_cycle(lr_maxes, total, div=10.0, div_final=1e4, pct_start=pct_start)
    for step, ((lrs, moms), (ref_lrs, ref_moms)) in enumerate(zip(rec.seen, ref)):
        assert lrs == pytest.approx(ref_lrs, rel=1e-9, abs=0), step
        assert moms == pytest.approx(ref_moms, rel=1e-9, abs=0), step
    # the recorder keeps the head's lr per batch, the same sequence
    assert learn.recorder.lrs == pytest.approx([r[0][1] for r in ref], rel=1e-9)


def test_one_cycle_needs_one_rate_per_group():
    learn = _two_group_learner()
    with pytest.raises(ValueError, match="parameter group"):
        learn.fit_one_cycle(1, [1e-3, 1e-3, 1e-3])
