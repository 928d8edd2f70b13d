"""Seeding: one call makes Python, NumPy and PyTorch random draws repeatable."""
import random

import numpy as np
import torch


def set_seed(seed):
    """Seed every random number generator centaur uses.

    >>> set_seed(42)
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
