"""bf16 autocast as a callback: off by default, trains on CPU, hands float32 predictions to the metrics."""
import math

import torch

from centaur.train.accelerate import CompileModel, MixedPrecision

from distributed_worker import make_learner


def test_mixed_precision_trains_and_validates_in_float32():
    learn = make_learner()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.fit(1, 1e-2, cbs=[MixedPrecision()])
    assert all(not torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert learn.preds.dtype == torch.float32 and math.isfinite(learn.epoch_log["valid_loss"])
    assert not torch.is_autocast_enabled("cpu")  # left behind by no batch
    assert learn.model[1].weight.dtype == torch.float32  # the weights stay float32


def test_the_options_are_off_by_default():
    learn = make_learner()
    assert not any(isinstance(cb, (MixedPrecision, CompileModel)) for cb in learn.cbs)
