"""Volumes (C, D, H, W), such as CT or MRI scans: searched as a raw tensor, written as .npy
and a montage of the slices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..drawing.plots import montage
from ..files.writing import save_npy, save_png
from .raw import Raw


@dataclass
class Volume(Raw):
    """Searched as a raw tensor (optionally inside an L2 ball)."""

    name: str = "volume"

    def save(self, x: torch.Tensor, folder: Path, stem: str, **extras) -> dict[str, str]:
        """x: (C, D, H, W)."""
        npy = save_npy(x, folder / f"{stem}.npy")
        png = save_png(montage(x), folder / f"{stem}.png")
        return {"npy": str(npy), "montage": str(png)}
