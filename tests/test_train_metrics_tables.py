"""Regression and ranking metrics for tables, checked against scikit-learn."""
import numpy as np
import torch
from sklearn.metrics import r2_score, roc_auc_score

from centaur.train.metrics import auc, r2, rmspe


def test_r2_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.5, size=200)
    assert abs(r2(torch.tensor(p), torch.tensor(y)) - r2_score(y, p)) < 1e-9


def test_auc_matches_sklearn_with_ties_and_logits():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
    assert abs(auc(torch.tensor(scores), torch.tensor(y)) - roc_auc_score(y, scores)) < 1e-12
    logits = torch.stack([torch.zeros(300), torch.tensor(scores)], dim=1)
    assert abs(auc(logits, torch.tensor(y)) - roc_auc_score(y, scores)) < 1e-12
    assert np.isnan(auc(torch.tensor(scores), torch.zeros(300)))


def test_rmspe_skips_zero_targets():
    y = torch.tensor([0.0, 100.0, 200.0])
    p = torch.tensor([5.0, 110.0, 180.0])
    assert abs(rmspe(p, y) - np.sqrt((0.1 ** 2 + 0.1 ** 2) / 2)) < 1e-6
