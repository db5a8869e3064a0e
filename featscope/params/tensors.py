"""Raw tensors: inputs of any shape, searched as they are (optionally inside an L2 ball)."""

from __future__ import annotations

import torch

from ..randomness import UnitRandom, per_element
from .base import Parameterization


def tensor(shape: tuple[int, ...], *, random: UnitRandom | torch.Generator | None = None,
           device: torch.device, sd: float = 0.01, max_norm: float | None = None,
           generator: torch.Generator | None = None) -> Parameterization:
    """A raw input of any shape (B, ...), optionally kept inside an L2 ball per sample.

    The ball is a reparameterization x = v * min(1, r / |v|), so the search never leaves it
    and, at the boundary, the gradient moves only the direction of x.
    """
    draws = per_element(random or generator, shape[0], *shape[1:], normal=True)
    values = draws.mul_(sd).to(device).requires_grad_(True)

    def value() -> torch.Tensor:
        if max_norm is None:
            return values
        norms = values.reshape(shape[0], -1).norm(dim=1).clamp_min(1e-12)
        factor = (max_norm / norms).clamp(max=1.0)
        return values * factor.reshape((-1,) + (1,) * (len(shape) - 1))

    return Parameterization([values], value, "tensor")
