"""Metrics against scikit-learn (the oracle), bootstrap intervals and the majority baseline."""
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

from centaur.train.metrics import (METRICS, accuracy, accuracy_multi, bootstrap_ci, error_rate, f1_macro, mae,
                                   majority_baseline, r2, rmse, rmspe)


def _classification(seed, n=200, num_classes=5, skill=1.0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, num_classes, (n,), generator=g)
    logits = torch.randn(n, num_classes, generator=g)
    logits[torch.arange(n), targets] += skill  # better than chance, not perfect
    return logits, targets


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_classes", [2, 3, 7])
def test_accuracy_error_f1_match_sklearn(seed, num_classes):
    logits, targets = _classification(seed, num_classes=num_classes)
    pred = logits.argmax(-1).numpy()
    assert accuracy(logits, targets) == pytest.approx(accuracy_score(targets.numpy(), pred), abs=1e-7)
    assert error_rate(logits, targets) == pytest.approx(1 - accuracy_score(targets.numpy(), pred), abs=1e-7)
    assert f1_macro(logits, targets) == pytest.approx(f1_score(targets.numpy(), pred, average="macro"), abs=1e-12)


def test_f1_macro_with_classes_missing_from_targets_and_preds():
    # class 3 of 5 is never the target and never predicted: sklearn leaves it out, so do we
    targets = torch.tensor([0, 0, 1, 1, 2, 4, 4])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 4, 4, 2]), 5).float()
    expected = f1_score(targets.numpy(), logits.argmax(-1).numpy(), average="macro")
    assert f1_macro(logits, targets) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_rmse_mae_match_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(100, 1, generator=g) * 3 + 1
    preds = targets + torch.randn(100, 1, generator=g)
    t, p = targets.double().numpy(), preds.double().numpy()
    assert rmse(preds, targets) == pytest.approx(np.sqrt(mean_squared_error(t, p)), rel=1e-5)
    assert mae(preds, targets) == pytest.approx(mean_absolute_error(t, p), rel=1e-5)
    # a flat prediction against (B, 1) targets is reshaped, not broadcast to (B, B)
    assert rmse(preds.view(-1), targets) == pytest.approx(np.sqrt(mean_squared_error(t, p)), rel=1e-5)


def test_accuracy_multi_matches_sklearn_on_flattened_decisions():
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(50, 4, generator=g) > 0.5).float()
    logits = torch.randn(50, 4, generator=g) + (targets * 2 - 1)
    expected = accuracy_score(targets.numpy().ravel(), (logits.sigmoid() >= 0.5).float().numpy().ravel())
    assert accuracy_multi(logits, targets) == pytest.approx(expected, abs=1e-7)


def test_metric_registry_names():
    assert set(METRICS) >= {"accuracy", "error_rate", "f1_macro", "accuracy_multi", "rmse", "mae"}


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_data():
    widths = []
    for n in (50, 2000):
        logits, targets = _classification(1, n=n, num_classes=3)
        point = accuracy(logits, targets)
        low, high = bootstrap_ci(accuracy, logits, targets, n_boot=300, seed=0)
        assert 0 <= low <= point <= high <= 1
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # about 1/sqrt(40) as wide: well under a third
    # seeded: the same call gives the same interval
    logits, targets = _classification(1, n=50, num_classes=3)
    assert bootstrap_ci(accuracy, logits, targets, n_boot=100, seed=3) == \
        bootstrap_ci(accuracy, logits, targets, n_boot=100, seed=3)


def test_bootstrap_ci_level():
    logits, targets = _classification(2, n=300, num_classes=4)
    narrow = bootstrap_ci(accuracy, logits, targets, n_boot=400, level=0.5)
    wide = bootstrap_ci(accuracy, logits, targets, n_boot=400, level=0.99)
    assert wide[0] <= narrow[0] and narrow[1] <= wide[1]


def test_majority_baseline():
    train = torch.tensor([0, 2, 2, 1, 2, 0])
    valid = torch.tensor([2, 2, 0, 1])
    assert majority_baseline(train, valid) == (2, pytest.approx(0.5))
    # the class comes from training data only, even if validation favours another
    assert majority_baseline(torch.tensor([1, 1, 0]), torch.tensor([0, 0, 0, 1]))[0] == 1


@pytest.mark.parametrize("metric", [accuracy, error_rate, f1_macro])
def test_bootstrap_fast_path_equals_calling_the_metric_per_resample(metric):
    logits, targets = _classification(4, n=60, num_classes=4, skill=0.5)
    # a wrapper is not in the fast-path table, so it takes the one-call-per-resample path
    slow = lambda p, t: metric(p, t)
    fast_ci = bootstrap_ci(metric, logits, targets, n_boot=200, level=0.9, seed=7)
    slow_ci = bootstrap_ci(slow, logits, targets, n_boot=200, level=0.9, seed=7)
    assert fast_ci == pytest.approx(slow_ci, abs=1e-6)  # accuracy() itself averages in float32


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (24, 24), (81, 263), (499, 500)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest
    from centaur.train.metrics import wilson_interval
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_accuracy_intervals_stay_honest_when_every_answer_is_right():
    from centaur.train.metrics import confidence_interval
    logits = torch.eye(3)[[0, 1, 2] * 8]  # (24, 3): all right
    targets = torch.tensor([0, 1, 2] * 8)
    low, high = confidence_interval(accuracy, logits, targets)
    assert high == 1.0 and 0.85 < low < 0.87  # not "100% to 100%", as a bootstrap says
    assert bootstrap_ci(accuracy, logits, targets) == (1.0, 1.0)
    low_err, high_err = confidence_interval(error_rate, logits, targets)
    assert (low_err, high_err) == pytest.approx((0.0, 1 - low))


@pytest.mark.parametrize("metric", [rmse, mae, r2, rmspe])
@pytest.mark.parametrize("shape", [(80,), (80, 1), (80, 3)])
def test_regression_bootstrap_fast_path_equals_calling_the_metric(metric, shape):
    g = torch.Generator().manual_seed(5)
    targets = torch.randn(shape, generator=g) * 10 + 50
    targets[3] = 0.0  # rmspe leaves out zero targets
    preds = targets + torch.randn(shape, generator=g) * 3
    slow = lambda p, t: metric(p, t)  # not in the fast-path table: one call per resample
    fast_ci = bootstrap_ci(metric, preds, targets, n_boot=150, level=0.9, seed=2)
    slow_ci = bootstrap_ci(slow, preds, targets, n_boot=150, level=0.9, seed=2)
    assert fast_ci == pytest.approx(slow_ci, rel=1e-5)  # the metrics themselves work in float32
