"""Architectures, pretrained weights that work offline, heads and model directories."""
