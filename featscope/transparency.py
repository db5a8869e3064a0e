"""MACO's transparency map: where the search pushed hardest, as an alpha channel.

The map is the input gradient's magnitude |∂L/∂image|, summed over colour channels and
accumulated over the steps: pixels the objective never cared about stay transparent.
"""

from __future__ import annotations

import torch


class GradientAccumulator:
    """Sums |grad| (B, C, H, W) -> (B, H, W) over the steps of a search."""

    def __init__(self):
        self.total: torch.Tensor | None = None

    def add(self, grad: torch.Tensor | None) -> None:
        if grad is None:
            return
        magnitude = grad.detach().abs().sum(dim=1)
        self.total = magnitude if self.total is None else self.total + magnitude

    def result(self) -> torch.Tensor | None:
        return None if self.total is None else self.total.cpu()


def alpha(transparency: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """(B, H, W) accumulated magnitudes -> (B, 1, H, W) alpha in [0, 1].

    Scaled per image by its ``quantile`` (not its max, which one hot pixel would set), then
    square-rooted so that moderate attention stays visible.
    """
    flat = transparency.reshape(transparency.shape[0], -1)
    scale = torch.quantile(flat.float(), quantile, dim=1).clamp_min(1e-12)
    return (transparency / scale[:, None, None]).clamp(0, 1).sqrt()[:, None]


def with_alpha(images: torch.Tensor, transparency: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images and (B, H, W) maps -> (B, C+1, H, W): RGBA (or LA) images."""
    return torch.cat([images, alpha(transparency).to(images.dtype)], dim=1)
