"""Heatmaps that show where in an image a classifier found the evidence for a class.

Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): weight each channel of the body's last
feature maps by the mean gradient of the class score with respect to it, sum, keep the
positive part. Our models are a body (feature maps) followed by a head, so the feature maps
are at hand without hooks; any timm CNN body works.
"""
import io

import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, x, target=None):
    """(heatmaps (B, h, w) in [0, 1], logits (B, K)) for a BodyHead model and a batch x.

    target: class indices (B,) to explain; default the predicted class of each image.

    >>> cam, logits = grad_cam(model.eval(), torch.randn(1, 3, 128, 128))  # doctest: +SKIP
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()  # an inference tensor cannot enter autograd
        with torch.no_grad():
            features = model.body(x)  # (B, C, h, w)
        features = features.detach().requires_grad_(True)
        logits = model.head(features)  # (B, K)
        if target is None:
            target = logits.argmax(-1)
        target = torch.as_tensor(target).view(-1, 1)
        score = logits.gather(1, target).sum()
        (grad,) = torch.autograd.grad(score, features)  # (B, C, h, w)
    weights = grad.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = (weights * features.detach()).sum(1).clamp(min=0)  # (B, h, w)
    cam = cam / cam.amax((1, 2), keepdim=True).clamp(min=1e-12)
    return cam, logits.detach()


def overlay(image, cam, alpha=0.5, colormap="jet"):
    """Blend a heatmap (h, w) over an image (3, H, W) uint8; returns (H, W, 3) uint8."""
    from matplotlib import colormaps
    h, w = image.shape[1:]
    up = F.interpolate(cam[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]  # (H, W)
    colors = colormaps[colormap](up.clamp(0, 1).numpy())[..., :3] * 255  # (H, W, 3)
    picture = image.permute(1, 2, 0).numpy().astype(np.float32)  # (H, W, 3)
    return (picture * (1 - alpha) + colors * alpha).round().clip(0, 255).astype(np.uint8)


def to_png(pixels):
    """(H, W, 3) uint8 -> PNG bytes."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
