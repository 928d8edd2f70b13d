"""Heatmaps from a network's activations, for interpretation: class activation maps and
Grad-CAM for any CNN. The code lives in centaur.models.cam, which the Predictor (and so the
service) uses too; this module names it where interpretation users look for it."""
from ..models.cam import Hook, class_activation_map, grad_cam, last_conv_layer, overlay

__all__ = ["Hook", "class_activation_map", "grad_cam", "last_conv_layer", "overlay"]
