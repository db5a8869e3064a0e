"""Natural-image priors: terms that pull a search toward inputs the model finds natural.

``BatchNormStatistics`` is DeepInversion's feature-distribution prior (Yin et al., CVPR
2020): a model trained with batch norm keeps, in each norm, the mean and variance of every
channel over natural images. Per image, the prior measures how far the channel statistics
of each norm's input are from those running statistics, summed over the norms (the first one
weighted more, as DeepInversion does). It needs nothing but the model.

It reads the norms' outputs: y = (x - running_mean) / sqrt(running_var + eps) * w + b is an
affine map of the input per channel, so the input's statistics follow from the output's, and
the norms may be folded into the convolutions before them (the probed values are the same).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import ActivationMap, Objective, Resident

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
FIRST_WEIGHT = 10.0  # DeepInversion weights its first batch norm ten times the others


class BatchNormStatistics(Objective):
    """(B,) distance of each image's batch-norm input statistics from the running ones.

    ``norms``: {layer path: batch norm} in the order the model runs them (``of_model`` finds
    them). Per norm: ||mean_x - running_mean||_2 + ||var_x - running_var||_2 over channels,
    with the input's per-image channel mean and variance over its map.
    """

    penalty = True

    def __init__(self, norms: Mapping[str, nn.Module], first_weight: float = FIRST_WEIGHT):
        self.layers = frozenset(norms)
        self.name = "batch-norm statistics"
        self.first = next(iter(norms), None)
        self.first_weight = first_weight
        # (running mean, running var, eps, weight, bias), detached copies: the model may be
        # folded or moved while the prior is alive.
        self.norms = {
            path: tuple(_kept(t) for t in (
                norm.running_mean, norm.running_var, norm.eps,
                norm.weight if norm.affine else torch.ones_like(norm.running_mean),
                norm.bias if norm.affine else torch.zeros_like(norm.running_mean)))
            for path, norm in norms.items()}

    @classmethod
    def of_model(cls, model: nn.Module, **kwargs) -> BatchNormStatistics | None:
        """The prior over every batch norm of ``model`` that keeps running statistics and has
        no zero scale (None when there is none)."""
        norms = {path: module for path, module in model.named_modules()
                 if type(module) in NORMS and module.running_mean is not None
                 and (not module.affine or bool((module.weight != 0).all()))}
        return cls(norms, **kwargs) if norms else None

    def score(self, acts: ActivationMap) -> torch.Tensor:
        total = None
        for path, (mean, var, eps, weight, bias) in self.norms.items():
            y = acts[path]
            flat = y.reshape(y.shape[0], y.shape[1], -1).float()
            mean, var, weight, bias = (t.like(flat) for t in (mean, var, weight, bias))
            scale = (var + eps).sqrt() / weight  # x - mean = (y - b) * scale
            x_mean = (flat.mean(2) - bias) * scale + mean
            x_var = flat.var(2, unbiased=False) * scale.pow(2)
            distance = (x_mean - mean).norm(dim=1) + (x_var - var).norm(dim=1)
            if path == self.first:
                distance = self.first_weight * distance
            total = distance if total is None else total + distance
        return total


def _kept(value: torch.Tensor | float) -> Resident | float:
    """A tensor as a detached copy, kept on each device it is used on; a number as it is."""
    return Resident(value.detach().clone()) if isinstance(value, torch.Tensor) else value
