"""Which device a search runs on, and where a model's weights are."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FeatscopeError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": CUDA if available, then Apple MPS, then the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise FeatscopeError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N, "
                             "mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise FeatscopeError("device 'cuda' was asked for, but no CUDA GPU is available")
    if resolved.type == "cuda" and resolved.index is not None \
            and resolved.index >= torch.cuda.device_count():
        raise FeatscopeError(f"device {device!r} does not exist: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return resolved


def module_device(module: nn.Module) -> torch.device:
    """Where the module's weights are (the CPU for a module without any)."""
    return next(module.parameters(), torch.empty(0)).device
