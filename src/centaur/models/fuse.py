"""Fold BatchNorm into the convolution before it, for a model whose weights stay fixed.

In eval mode a BatchNorm is a per-channel scale and shift, so it can be folded into the
preceding convolution's weights and bias; that saves one pass over every activation map,
and on a CPU these passes are bound by memory speed. EfficientNet-Lite has a BatchNorm after
each of its 49 convolutions, so the body runs about 1.4x faster folded (docs/benchmarks.md).
"""
import copy

import torch
from torch import nn


def conv_bn_pairs(model, example):
    """(conv, bn) pairs where the BatchNorm's input is exactly that convolution's output.

    Found by running `example` once with hooks, so the pairing follows the real data flow,
    not the order modules happen to be declared in.
    """
    produced, pairs, keep = {}, [], []

    def after_conv(mod, inputs, output):
        produced[id(output)] = mod
        keep.append(output)  # keep tensors alive so their ids are not reused

    def before_bn(mod, inputs):
        conv = produced.get(id(inputs[0]))
        if conv is not None:
            pairs.append((conv, mod))

    hooks = [m.register_forward_hook(after_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    # SyncBatchNorm: what batch norm layers become when training on several GPUs (train/distributed.py)
    norms = (nn.BatchNorm2d, nn.SyncBatchNorm)
    hooks += [m.register_forward_pre_hook(before_bn) for m in model.modules() if isinstance(m, norms)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    seen = set()
    return [(c, b) for c, b in pairs if not (id(c) in seen or id(b) in seen or seen.update((id(c), id(b))))]


def fold_batchnorm(model, example):
    """A copy of `model` in eval mode with every conv -> BatchNorm pair folded into the conv.

    A BatchNorm with a built-in activation (timm's BatchNormAct2d) keeps its activation.
    Use only while the weights do not change (a frozen body, inference).

    >>> fast = fold_batchnorm(model.body, torch.zeros(1, 3, 128, 128))  # doctest: +SKIP
    """
    model = copy.deepcopy(model).eval()
    parents = {id(child): (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    for conv, bn in conv_bn_pairs(model, example):
        if conv.out_channels != bn.num_features or id(bn) not in parents:
            continue
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
            1 / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        shift = (bn.bias.detach() if bn.affine else 0) - bn.running_mean * scale
        bias = conv.bias.detach() * scale + shift if conv.bias is not None else shift
        conv.weight = nn.Parameter(conv.weight.detach() * scale.view(-1, 1, 1, 1), requires_grad=False)
        conv.bias = nn.Parameter(bias, requires_grad=False)
        after = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Sequential(*after) if after else nn.Identity())
    return model
