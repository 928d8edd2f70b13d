"""Folding BatchNorm into convolutions changes speed, not answers."""
import pytest
import timm
import torch
from torch import nn

from centaur.models.classifier import create_classifier
from centaur.models.fuse import conv_bn_pairs, fold_batchnorm


def _randomize_bn(model):
    # fresh BatchNorms are identities; give them real statistics so folding is tested
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("arch", ["tf_efficientnet_lite0", "resnet10t"])
def test_folded_model_gives_the_same_outputs(arch):
    torch.manual_seed(0)
    model = _randomize_bn(timm.create_model(arch, num_classes=5)).eval()
    x = torch.randn(2, 3, 64, 64)
    folded = fold_batchnorm(model, x[:1])
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
    remaining = [m for m in folded.modules() if isinstance(m, nn.BatchNorm2d)]
    assert remaining == []  # every BatchNorm in these nets follows a convolution
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_batchnorm_not_fed_by_a_conv_is_left_alone():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    pairs = conv_bn_pairs(model, torch.randn(1, 3, 8, 8))
    assert pairs == []  # the second BatchNorm follows a ReLU, not the conv directly
    folded = fold_batchnorm(model, torch.randn(1, 3, 8, 8))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 2


def test_frozen_body_head_matches_the_unfolded_forward():
    model, _ = create_classifier("lite0", 4, pretrained=True)
    model.eval()
    model.frozen_bf16 = False  # exact folding here; bfloat16 is checked below
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model.frozen = True
        got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert not any(k.startswith("_folded") for k in model.state_dict())
    # new weights invalidate the folded copy
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["body.conv_stem.weight"].mul_(0.5)
    model.load_state_dict(state)
    model.frozen = False
    with torch.no_grad():
        unfrozen = model(x)
        model.frozen = True
        torch.testing.assert_close(model(x), unfrozen, rtol=1e-4, atol=1e-4)


def test_frozen_body_in_bfloat16_gives_nearly_the_same_outputs():
    """Where the CPU has native bfloat16 a frozen body runs in it; the head sees float32 features."""
    from centaur.models.heads import _native_bf16
    model, _ = create_classifier("lite0", 4, pretrained=True)
    model.eval()
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        model.frozen, model.frozen_bf16 = True, True
        got = model(x)
    assert got.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(got, expected).min() > 0.99
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    model.frozen_bf16 = "auto"
    assert model._bf16(x) == _native_bf16()
