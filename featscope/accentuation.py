"""Feature accentuation (DeepDream from an image): push a given image toward a unit or class.

The search starts at the user's image instead of noise and is penalized by the mean squared
distance to it, so the result stays recognizably that image while showing what in it (or
what added to it) drives the target. ``closeness`` trades faithfulness to the image against
the objective's rise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .images import load_image
from .models import LoadedModel
from .objectives import Objective
from .render import RenderResult, render

# Objectives (logits, pooled channels) are O(1..30); a visible change is a mean squared
# distance of O(0.01), so this weight makes both matter.
DEFAULT_CLOSENESS = 50.0


def accentuate(model: nn.Module | LoadedModel, objectives: Objective | Sequence[Objective],
               image: torch.Tensor | str | Path, *, closeness: float = DEFAULT_CLOSENESS,
               param: str = "pixel", **kwargs) -> RenderResult:
    """Render each objective starting from ``image`` ((C, H, W) or (1, C, H, W) in [0, 1], or
    an image file), kept close to it. Other keyword arguments go to ``render``."""
    if not isinstance(image, torch.Tensor):
        channels = model.input_shape[0] if isinstance(model, LoadedModel) else 3
        image = load_image(image, "L" if channels == 1 else "RGB")
    return render(model, objectives, start=image, closeness=closeness, param=param, **kwargs)
