"""What a rendering search records and does at each step, as ``GradientSearch`` step hooks.

Each hook is a small object registered on the search; none of them synchronizes with the
device: values stay on it until the batch ends. A search replayed from a CUDA graph hands the
post hooks the graph's own outputs (and leaves its gradients in place), which the next step
overwrites: a hook that keeps something copies it.
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
from .recipes import Recipe


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
        self.augment = True  # False: the polish, the image itself without transforms
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
        scores = self.scores(augment=self.augment)
        # Kept without its autograd graph: holding it would keep every activation of this
        # step alive into the next one, and the variables' gradient accumulators with them
        # (made on the stream of the first step, which a CUDA graph's capture must match).
        self.last = scores.detached()
        return scores.total


class Schedule:
    """Before each step: the pipeline's schedules (crop sizes, colour noise, the canvas), the
    learning rate's (``cosine``: from lr down to 0 over the steps before the polish), the end
    of the warm-up, and the polish (the last steps search the image itself, without
    transforms)."""

    def __init__(self, pipe: Pipeline, model: SearchModel, objective: BatchObjective,
                 recipe: Recipe):
        self.pipe, self.model, self.objective = pipe, model, objective
        self.warmup = recipe.warmup
        self.polish_from = recipe.steps - recipe.polish_steps
        self.lr, self.lr_schedule = recipe.lr, recipe.lr_schedule

    def __call__(self, search: GradientSearch, step: int) -> None:
        self.pipe.at_step(step)
        if step == self.warmup:
            self.model.end_warmup()
        self.objective.augment = step < self.polish_from
        if self.lr_schedule == "cosine":
            fraction = step / max(1, self.polish_from)
            search.set_lr(self.lr * 0.5 * (1 + math.cos(math.pi * fraction)))


class History:
    """After each step: the target values (B,) under transforms, copied into a (steps, B)
    tensor on the device (a CUDA graph's outputs are overwritten by its next replay), which
    comes to the host once, at the end."""

    def __init__(self, objective: BatchObjective, steps: int, batch: int, device: torch.device):
        self.objective = objective
        self.values = torch.zeros(steps, batch, device=device)
        self.count = 0  # steps recorded (over every search of the batch: searches restart at 0)

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        self.values[self.count].copy_(self.objective.last.target.detach())
        self.count += 1

    def result(self) -> torch.Tensor:
        """(steps, B) on the CPU."""
        return self.values[:self.count].cpu()


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
    """After each step: ``on_step(step, values)`` with the search objective's values (B,), on
    the device (read them there, or copy them: a CUDA graph's next step overwrites them)."""

    def __init__(self, on_step: Callable[[int, torch.Tensor], None]):
        self.on_step = on_step

    def __call__(self, search: GradientSearch, step: int, values: torch.Tensor) -> None:
        self.on_step(step, values)
