"""Which device trains a model: this process's CUDA GPU where PyTorch sees one, else the CPU."""
import os

import torch

from .errors import CentaurError


def resolve_device(device=None, local_rank=None):
    """The torch.device to train on, from None or "auto" (pick), "cpu", "cuda", "cuda:N" or a torch.device.

    "auto" and a bare "cuda" take the GPU of this process's LOCAL_RANK (torchrun sets it; 0
    otherwise), so N processes on one machine use N GPUs. local_rank overrides it, so a
    launcher can check the last process's GPU before starting any. A CUDA device on a machine
    without one is a CentaurError, not a traceback from deep inside PyTorch.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise CentaurError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise CentaurError(f"device {str(device)!r} asks for a CUDA GPU, but PyTorch sees none here (no GPU, no "
                           "driver, or a CPU-only PyTorch build). Use --device cpu, or --device auto to take a GPU "
                           "only where there is one.")
    if device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) if local_rank is None else local_rank)
    count = torch.cuda.device_count()
    if device.index >= count:
        raise CentaurError(f"device {str(device)!r} does not exist: this machine has {count} GPU(s), cuda:0 to "
                           f"cuda:{count - 1}. Start at most {count} process(es) per machine (--nproc), or use "
                           "--device cpu.")
    return device
