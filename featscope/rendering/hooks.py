"""What a rendering search records and does at each step, as ``GradientSearch`` step hooks.

Each hook is a small object registered on the search; none of them synchronizes with the
device: values stay on it until the batch ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..engine.gradient import GradientSearch
from ..engine.model import SearchModel
from ..objectives.base import IMAGE, Activations, Objective
from ..objectives.scoring import BatchScorer, Scores
from .pipeline import Pipeline


class BatchObjective:
    """F for a batch's search: element i's objective on its transformed views (B,).

    ``last`` keeps the last evaluation's scores (the target values without penalties too);
    with ``watch_image`` the image's gradient is kept for the transparency map.
    """

    def __init__(self, pipe: Pipeline, model: SearchModel, objectives: Sequence[Objective],
                 watch_image: bool = False):
        self.pipe, self.model, self.watch_image = pipe, model, watch_image
        self.augmented = BatchScorer(objectives, views=pipe.views)
        self.clean = BatchScorer(objectives) if pipe.views > 1 else self.augmented
        self.last: Scores | None = None
        self.image: torch.Tensor | None = None

    def scores(self, augment: bool) -> Scores:
        """The batch's scores on its transformed views, or on the clean input."""
        image = self.pipe.image()
        if augment and self.watch_image and image.requires_grad:
            image.retain_grad()
            self.image = image
        views = self.pipe.views if augment else 1
        acts = Activations(self.model.run(self.pipe.model_input(image, augment)), views=views)
        acts[IMAGE] = image
        return (self.augmented if augment else self.clean).evaluate(acts)

    def __call__(self) -> torch.Tensor:
        self.last = self.scores(augment=True)
        return self.last.total


class Schedule:
    """Before each step: the pipeline's schedules (crop sizes, colour noise, the canvas), the
    learning rate's (``cosine``: from lr down to 0 over ``steps``) and the end of the
    warm-up."""

    def __init__(self, pipe: Pipeline, model: SearchModel, warmup: int,
                 lr_schedule: str = "constant", lr: float = 0.0, steps: int = 1):
        self.pipe, self.model, self.warmup = pipe, model, warmup
        self.lr_schedule, self.lr, self.steps = lr_schedule, lr, steps

    def __call__(self, search: GradientSearch, step: int) -> None:
        self.pipe.at_step(step)
        if step == self.warmup:
            self.model.end_warmup()
        if self.lr_schedule == "cosine":
            search.set_lr(self.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, self.steps))))


class History:
    """After each step: the target values (B,) under transforms, kept on the device."""

    def __init__(self, objective: BatchObjective):
        self.objective, self.values = objective, []

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        self.values.append(self.objective.last.target.detach())

    def result(self) -> torch.Tensor:
        """(steps, B) on the CPU."""
        return torch.stack(self.values).cpu()


class Moved:
    """After each step: which elements' variables have had a non-zero gradient yet (B,)."""

    def __init__(self, variable: torch.Tensor):
        self.variable = variable
        self.moved = torch.zeros(variable.shape[0], dtype=torch.bool, device=variable.device)

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        grad = self.variable.grad
        if grad is not None:
            self.moved |= grad.reshape(grad.shape[0], -1).abs().amax(dim=1) > 0


class Transparency:
    """After each step: MACO's transparency map, |d objective / d image| summed over colour
    channels and accumulated over the steps (B, H, W)."""

    def __init__(self, objective: BatchObjective):
        self.objective = objective
        self.total: torch.Tensor | None = None

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        image = self.objective.image
        if image is None or image.grad is None:
            return
        magnitude = image.grad.detach().abs().sum(dim=1)
        self.total = magnitude if self.total is None else self.total + magnitude

    def result(self) -> torch.Tensor | None:
        return None if self.total is None else self.total.cpu()


class Callback:
    """After each step: ``on_step(step, values)`` with the search objective's values (B,)."""

    def __init__(self, on_step: Callable[[int, torch.Tensor], None]):
        self.on_step = on_step

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        self.on_step(step, values)
