"""One batch of units, searched together: the search loop.

The model is put in search mode (``SearchModel``), the pipeline builds each unit's input
from its own randomness, and a ``GradientSearch`` maximizes every unit's objective at once;
what is recorded along the way is done by step hooks (``hooks``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..engine.gradient import GradientSearch
from ..engine.model import Precision, SearchModel, channels_last_helps
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..objectives.base import IMAGE, Objective
from ..randomness import UnitRandom
from .hooks import BatchObjective, Callback, History, Moved, Schedule, Transparency
from .pipeline import Parameterize, Pipeline
from .plan import Batch
from .recipes import OPTIMIZERS, Recipe
from .results import UnitResult


@dataclass(frozen=True)
class SearchSettings:
    """What a request fixes for all its batches, beyond each batch's recipe."""

    device: torch.device
    precision: Precision = "float32"
    fold_batchnorm: bool = True
    stop_early: bool = True
    max_norm: float | None = None
    parameterize: Parameterize | None = None
    spectrum: torch.Tensor | None = None


def render_batch(loaded: LoadedModel, batch: Batch, objectives: list[Objective],
                 settings: SearchSettings, starts: torch.Tensor | None = None,
                 on_step: Callable[[int, torch.Tensor], None] | None = None,
                 recipe: Recipe | None = None) -> list[UnitResult]:
    """Search for every unit of ``batch`` at once; ``objectives[i]`` is what unit i's search
    maximizes (its target plus the recipe's penalties). ``starts`` (B, C, h, w): start images
    at the recipe's image size. ``recipe`` replaces the batch's (e.g. a smaller learning
    rate after NaN)."""
    recipe = recipe or batch.recipe
    began = time.perf_counter()
    device = settings.device
    random = UnitRandom([u.seed for u in batch.units])
    pipe = Pipeline(loaded, recipe, random, device, start=starts, spectrum=settings.spectrum,
                    parameterize=settings.parameterize, max_norm=settings.max_norm)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)) - {IMAGE})
    image_input = pipe.is_image and len(loaded.input_shape) == 3
    with SearchModel(loaded.module, device, layers, precision=settings.precision,
                     stop_early=settings.stop_early,
                     fold_example=pipe.example if settings.fold_batchnorm else None,
                     channels_last=image_input and channels_last_helps(device, settings.precision),
                     warmup=recipe.warmup > 0) as model:
        objective = BatchObjective(pipe, model, objectives, watch_image=recipe.transparency)
        start = objective.scores(augment=False)
        _check_dependency(batch, start.depends)
        initial = start.target.detach()
        del start  # its autograd graph holds every saved activation of that forward pass
        search = GradientSearch(pipe.params, maximize=True, lr=recipe.lr,
                                optimizer=_optimizer(recipe), grad_norm=recipe.grad_norm,
                                batched=True)
        history, moved = History(objective), Moved(pipe.params[0])
        transparency = Transparency(objective)
        search.register_step_pre_hook(Schedule(pipe, model, recipe.warmup, recipe.lr_schedule,
                                               recipe.lr, recipe.steps))
        search.register_step_post_hook(history)
        search.register_step_post_hook(moved)
        if recipe.transparency:
            search.register_step_post_hook(transparency)
        if on_step is not None:
            search.register_step_post_hook(Callback(on_step))
        for _ in range(recipe.steps):
            search.step(objective)
        with torch.no_grad():
            final = objective.scores(augment=False).target
            images = pipe.display(pipe.image()).detach().cpu()
    steps = history.result()
    seconds = (time.perf_counter() - began) / len(batch.units)
    maps = transparency.result()
    initial, final = initial.cpu(), final.cpu()
    dead = never_activated(initial, steps, final)
    zero = (~moved.moved).cpu()
    return [UnitResult(unit.label, unit.name, unit.copy, unit.seed, batch.preset, recipe,
                       images[i], float(initial[i]), float(final[i]), steps[:, i],
                       bool(zero[i]), bool(dead[i]), seconds, batch.labels,
                       None if maps is None else maps[i])
            for i, unit in enumerate(batch.units)]


def _optimizer(recipe: Recipe) -> Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None:
    """The recipe's optimizer as a factory of the search's variables (None: plain steps)."""
    kind = OPTIMIZERS[recipe.optimizer]
    if kind is None:
        return None
    return lambda variables: kind(variables, lr=recipe.lr, betas=recipe.betas)


def _check_dependency(batch: Batch, depends: torch.Tensor) -> None:
    independent = [u.label for u, ok in zip(batch.units, depends.tolist()) if not ok]
    if independent:
        raise FeatscopeError(
            f"target(s) {', '.join(independent)} do not depend on the input: there is no "
            "differentiable path from the input to them (a torch.no_grad block, an integer "
            "cast, argmax or a constant output), so their gradient is zero. Choose a layer on "
            "the input's differentiable path."
        )


def never_activated(initial: torch.Tensor, history: torch.Tensor,
                    final: torch.Tensor) -> torch.Tensor:
    """(B,) True where the objective never rose above its starting value (a dead unit)."""
    best = torch.maximum(history.amax(0), final) if len(history) else final
    return best <= initial + 1e-6 * (1 + initial.abs())
