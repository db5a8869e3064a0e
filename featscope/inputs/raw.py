"""Inputs of any other shape: a raw tensor (optionally inside an L2 ball), written as .npy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..files.writing import save_npy
from ..params.base import Parameterization
from ..params.tensors import tensor
from ..randomness import UnitRandom


@dataclass
class Raw:
    max_norm: float | None = None
    name: str = "tensor"

    def parameterize(self, shape: tuple[int, ...], random: UnitRandom | torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        return tensor(shape, random=random, device=device, sd=sd, max_norm=self.max_norm)

    def save(self, x: torch.Tensor, folder: Path, stem: str, **extras) -> dict[str, str]:
        return {"npy": str(save_npy(x, folder / f"{stem}.npy"))}
