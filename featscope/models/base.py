"""What every loader returns: the module, its input shape and the normalization of its input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

IDENTITY_SOURCE = "none (inputs in [0, 1])"


class Normalization(nn.Module):
    """x -> (x - mean) / std per channel, mapping a [0, 1] image (B, C, ...) to model input."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def _shaped(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.to(like.device, like.dtype).reshape((1, -1) + (1,) * (like.dim() - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shaped(self.mean, x)) / self._shaped(self.std, x)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._shaped(self.std, x) + self._shaped(self.mean, x)


def identity_normalization(channels: int = 1) -> Normalization:
    return Normalization([0.0] * channels, [1.0] * channels)


@dataclass
class LoadedModel:
    """A model and what a search needs beyond it.

    ``normalization_source`` says where ``normalization`` came from (e.g. "timm
    pretrained_cfg", "--normalize imagenet", "none (inputs in [0, 1])"); ``notes`` are what
    the loader did on its own that a user should know (e.g. a key prefix removed from a
    checkpoint), one line each.
    """

    module: nn.Module
    name: str
    input_shape: tuple[int, ...]  # without the batch dim, e.g. (3, 224, 224)
    normalization: Normalization = field(default_factory=identity_normalization)
    class_names: tuple[str, ...] | None = None
    normalization_source: str = "given to LoadedModel"
    notes: tuple[str, ...] = ()
    input_shape_guessed: bool = False  # nothing said the input shape: DEFAULT_INPUT_SHAPE

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3 and self.input_shape[0] in (1, 3)
