"""Images (C, H, W) in [0, 1], C 1 or 3: written as PNG, with MACO's transparency map as a
second, RGBA (or LA) PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..files.writing import save_png


def alpha(transparency: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """(B, H, W) accumulated |input gradient| -> (B, 1, H, W) alpha in [0, 1].

    Scaled per image by its ``quantile`` (not its max, which one hot pixel would set), then
    square-rooted so that moderate attention stays visible.
    """
    flat = transparency.reshape(transparency.shape[0], -1)
    scale = torch.quantile(flat.float(), quantile, dim=1).clamp_min(1e-12)
    return (transparency / scale[:, None, None]).clamp(0, 1).sqrt()[:, None]


def with_alpha(images: torch.Tensor, transparency: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images and (B, H, W) maps -> (B, C+1, H, W): RGBA (or LA) images."""
    return torch.cat([images, alpha(transparency).to(images.dtype)], dim=1)


@dataclass
class Image:
    """Images: the recipe's image parameterization searches them (no ``parameterize`` here)."""

    name: str = "image"

    def save(self, x: torch.Tensor, folder: Path, stem: str,
             transparency: torch.Tensor | None = None) -> dict[str, str]:
        """x: (C, H, W) in [0, 1]; transparency: (H, W) accumulated gradient magnitudes."""
        files = {"image": str(save_png(x, folder / f"{stem}.png"))}
        if transparency is not None:
            rgba = with_alpha(x[None], transparency[None])[0]
            files["transparency"] = str(save_png(rgba, folder / f"{stem}-alpha.png"))
        return files
