"""Which device a search runs on, where a model's weights are, and how much memory is free."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def placed(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """``module`` on ``device`` for the block, then back where its weights were."""
    home = module_device(module)
    try:
        yield module.to(device)
    finally:
        module.to(home)


def free_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on a CUDA device: what the driver reports free plus what this
    process's allocator holds unused; None where it cannot be read (the CPU, MPS, no driver)."""
    if device.type != "cuda":
        return None
    try:
        free = torch.cuda.mem_get_info(device)[0]
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    except (RuntimeError, AssertionError):
        return None
