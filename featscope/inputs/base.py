"""What an input kind is: how a model's input is searched over and how the result is written.

The search, objectives and pooling are the same for every kind; a kind supplies

- ``parameterize(shape, random, device, sd)``: the variables and the map to a model input
  (B, ...), keeping the input in its natural domain (images use the recipe's image
  parameterization instead, see ``featscope.params``);
- ``save(x, folder, stem, transparency=None) -> {label: path}``: files a person can use;
- optionally ``measure(module, objectives, x) -> [dict per element]``: extra numbers for
  the summary (tokens: the objective of the nearest real tokens).

Kinds are guessed from the input's shape (``infer_kind``) or chosen by name (``KINDS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from ..params.base import Parameterization
from ..randomness import UnitRandom

KINDS = ("image", "signal", "volume", "vector", "tokens", "tensor")
# The number of input dims (without batch) each kind is defined for; "tensor" takes any.
KIND_DIMS = {"image": 3, "signal": 2, "volume": 4, "vector": 1, "tokens": 2}
KIND_LAYOUT = {"image": "CxHxW", "signal": "CxL", "volume": "CxDxHxW", "vector": "F",
               "tokens": "TxD"}


class InputKind(Protocol):
    name: str

    def parameterize(self, shape: tuple[int, ...], random: UnitRandom | torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization: ...

    def save(self, x: torch.Tensor, folder: Path, stem: str,
             transparency: torch.Tensor | None = None) -> dict[str, str]: ...


def infer_kind(input_shape: Sequence[int]) -> str:
    """The kind a model input of ``input_shape`` (no batch dim) most likely is."""
    dims = len(input_shape)
    if dims == 3 and input_shape[0] in (1, 3):
        return "image"
    return {1: "vector", 2: "signal", 4: "volume"}.get(dims, "tensor")
