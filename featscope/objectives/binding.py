"""Objectives bound to a model: class names resolved, and the layout of every layer they read.

``bind_objectives`` is what ``render``, the dataset examples and the metrics call before they
score anything: the layers' layouts are found from one look at the model (``list_layers``:
a forward pass on a batch of one and of two), and only when an objective still needs one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..engine.device import module_device
from ..engine.probing import list_layers
from .base import Objective


def bind_objectives(objectives: Sequence[Objective], module: nn.Module,
                    input_shape: Sequence[int],
                    class_names: Sequence[str] | None = None) -> list[Objective]:
    """``objectives`` resolved against ``module`` with inputs of ``input_shape`` (no batch).

    A model that runs out of memory for the look at one input keeps its objectives unbound:
    their search runs out of memory too, and the search's recovery says so
    (``rendering.recovery``)."""
    needed = frozenset().union(*(o.layouts_needed() for o in objectives))
    layers = None
    if needed:
        example = torch.zeros((1, *input_shape), device=module_device(module))
        try:
            layers = {info.name: info for info in list_layers(module, example)}
        except torch.OutOfMemoryError:
            layers = None
    return [o.bind(class_names, layers) for o in objectives]
