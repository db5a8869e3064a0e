"""Penalties and priors: terms that shape a search without being the target.

- ``Closeness``: the mean squared distance of the searched image to a start image (feature
  accentuation: start from a photo, stay close to it, see what a unit adds to it);
- ``Diversity``: how alike the copies of one target are (the mean cosine similarity of their
  Gram matrices at a layer), so that subtracting it pushes them apart;
- ``TotalVariation``: how much neighbouring pixels differ (Plug-In Inversion's only prior).

Both are subtracted from a target's objective with a weight, like any other term::

    channel("_blocks.8", 5) - DEFAULT_CLOSENESS * Closeness(photo)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.layout import Layout
from .base import IMAGE, ActivationMap, Objective, Resident

# Objectives (logits, pooled channels) are O(1..30); a visible change is a mean squared
# distance of O(0.01), so this weight makes both matter.
DEFAULT_CLOSENESS = 50.0
# The similarity is in [-1, 1]: this weight lets it matter without drowning the objective.
DEFAULT_DIVERSITY = 5.0


class Closeness(Objective):
    """(B,) mean squared distance of the searched image to ``start`` (C, H, W) in [0, 1]."""

    per_view = False
    penalty = True

    def __init__(self, start: torch.Tensor):
        self.start = start if start.dim() == 4 else start[None]
        self._start = Resident(self.start)
        self.layers = frozenset({IMAGE})
        self.name = "closeness"

    def score(self, acts: ActivationMap) -> torch.Tensor:
        image = acts[IMAGE]
        start = self._start.like(image)
        return (image - start).pow(2).flatten(1).mean(1)


class TotalVariation(Objective):
    """(B,) the mean squared difference between neighbouring pixels of the searched image,
    summed over the two directions."""

    per_view = False
    penalty = True

    def __init__(self):
        self.layers = frozenset({IMAGE})
        self.name = "total_variation"

    def score(self, acts: ActivationMap) -> torch.Tensor:
        image = acts[IMAGE]
        dy = (image[..., 1:, :] - image[..., :-1, :]).pow(2).flatten(1).mean(1)
        dx = (image[..., :, 1:] - image[..., :, :-1]).pow(2).flatten(1).mean(1)
        return dy + dx


def gram(acts: torch.Tensor) -> torch.Tensor:
    """(B, C, *S) activations -> (B, C*C) flattened Gram matrices; (B, C) -> (B, C)."""
    if acts.dim() == 2:
        return acts
    flat = acts.reshape(acts.shape[0], acts.shape[1], -1)
    return torch.bmm(flat, flat.transpose(1, 2)).reshape(acts.shape[0], -1) / flat.shape[-1]


def similarity(features: torch.Tensor) -> torch.Tensor:
    """(N, F) -> (N,) mean cosine similarity of each row to the other rows (0 when alone)."""
    unit = F.normalize(features, dim=1)
    cosine = unit @ unit.T
    others = max(1, features.shape[0] - 1)
    return (cosine.sum(1) - cosine.diagonal()) / others


class Diversity(Objective):
    """(N,) how alike the N elements it is scored with are, at ``layer`` (read with
    ``layout`` when given: the Gram matrices of its features, not of its tokens).

    One ``Diversity`` term is shared by all copies of one target, so a batch scorer
    evaluates it on exactly those copies; each copy's Gram matrix is averaged over its
    views first.
    """

    per_view = False
    coupled = True
    penalty = True

    def __init__(self, layer: str, layout: Layout | None = None):
        self.layer, self.layout = layer, layout
        self.layers = frozenset({layer})
        self.name = f"diversity({layer})"

    def layout_of(self, layer: str) -> Layout | None:
        return self.layout if layer == self.layer else None

    def score(self, acts: ActivationMap) -> torch.Tensor:
        act = acts[self.layer]
        if self.layout is not None:  # (B, C, *S): the Gram matrices of the features
            act = self.layout.feature_map(act)
        views = getattr(acts, "views", 1)
        features = gram(act)
        features = features.reshape(act.shape[0] // views, views, -1).mean(1)
        return similarity(features)
