"""Heatmaps that show where in an image a network found the evidence for a class: class
activation maps and Grad-CAM for any CNN, and their overlay on the image.

Hooks are context managers that always remove themselves, so an exception halfway through
never leaves a hook behind on the user's model, and they see only their own thread's forward
passes, so heatmaps can be drawn while a server runs the same model for other requests. They live here, beside the models, because
both the Predictor (the service's heatmaps) and the interpretation tools use them.
"""
import io
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.figures import PNG


class Hook:
    """Keep the output of `module`. With backward=True the output is replaced by a detached copy
    that requires grad, so a gradient can be taken with respect to it without flowing on into
    the layers before it (Grad-CAM needs nothing from them).

    >>> with Hook(model.body) as hook:   # doctest: +SKIP
    ...     model(x)
    >>> hook.output.shape                # doctest: +SKIP
    """

    def __init__(self, module, backward=False):
        self.module, self.backward = module, backward
        self.output = None
        self.handles = []
        self.thread = None

    def _forward(self, module, inputs, output):
        # Only the thread that set the hook: a server runs the same model for other requests in
        # other threads meanwhile (its batches, other heatmaps), and their outputs must neither
        # land here nor be turned into tensors that require grad.
        if threading.get_ident() != self.thread:
            return None
        if self.backward:
            output = output.detach().requires_grad_(True)
        self.output = output
        return output

    def __enter__(self):
        self.thread = threading.get_ident()
        self.handles.append(self.module.register_forward_hook(self._forward))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        return False


def last_conv_layer(model):
    """The module whose output is the last 4-D feature map: the body for our models, else the
    last Conv2d (timm CNNs end their body with a 1x1 conv and an activation)."""
    body = getattr(model, "body", None)
    if body is not None:
        return body
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer; heatmaps need a convolutional network.")
    return convs[-1]


def _normalize(maps, size):  # (B, h, w) -> (B, H, W) in [0, 1]
    maps = maps.clamp(min=0)
    maps = maps / maps.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1)
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def grad_cam(model, x, target=None, layer=None):
    """Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): (heatmaps (B, H, W) in [0, 1], logits (B, K)).

    Channels of `layer`'s output are weighted by the mean gradient of the target class's
    score with respect to them. target: class indices (B,), default the predicted classes.
    The model's parameters get no gradients.

    >>> maps, logits = grad_cam(model.eval(), images)   # doctest: +SKIP
    """
    layer = layer or last_conv_layer(model)
    with torch.inference_mode(False), torch.enable_grad(), Hook(layer, backward=True) as hook:
        logits = model(x.clone())  # (B, K); an inference tensor cannot enter autograd, a clone can
        if target is None:
            target = logits.argmax(-1)
        target = torch.as_tensor(target).view(-1, 1)
        (grads,) = torch.autograd.grad(logits.gather(1, target).sum(), hook.output)  # (B, C, h, w)
        acts = hook.output.detach()  # (B, C, h, w)
    weights = grads.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
    return _normalize((weights * acts).sum(1), x.shape[-2:]), logits.detach()


def class_activation_map(model, x, target=None, layer=None, classifier=None):
    """CAM (Zhou et al. 2016) for a network that ends in global average pooling and one linear
    layer: the class's linear weights applied to every position of the last feature map.
    Returns (heatmaps (B, H, W) in [0, 1], logits (B, K)).

    classifier: that final nn.Linear (default: the model's last Linear).
    """
    layer = layer or last_conv_layer(model)
    classifier = classifier or [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad(), Hook(layer) as hook:
        logits = model(x)  # (B, K)
        acts = hook.output  # (B, C, h, w)
    if classifier.in_features != acts.shape[1]:
        raise ValueError(f"CAM needs the last linear layer to read the {acts.shape[1]} channels of the last feature "
                         f"map directly, but it reads {classifier.in_features} (the head has hidden layers, as "
                         "vision_learner's does); use grad_cam, which works with any head.")
    if target is None:
        target = logits.argmax(-1)
    w = classifier.weight[torch.as_tensor(target).view(-1)]  # (B, C)
    maps = torch.einsum("bc,bchw->bhw", w, acts)
    return _normalize(maps, x.shape[-2:]), logits


def overlay(image, cam, alpha=0.5, colormap="jet"):
    """Blend a heatmap (h, w) over an image (3, H, W) uint8; returns (H, W, 3) uint8."""
    from matplotlib import colormaps
    h, w = image.shape[1:]
    up = F.interpolate(cam[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]  # (H, W)
    colors = colormaps[colormap](up.clamp(0, 1).numpy())[..., :3] * 255  # (H, W, 3)
    picture = image.permute(1, 2, 0).numpy().astype(np.float32)  # (H, W, 3)
    return (picture * (1 - alpha) + colors * alpha).round().clip(0, 255).astype(np.uint8)


def to_png(pixels):
    """(H, W, 3) uint8 -> PNG: bytes that a notebook shows as the picture."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return PNG(buf.getvalue())
