"""One batch of units, searched together: the search loop.

The model is put in search mode (``SearchModel``), the pipeline builds each unit's input
from its own randomness, and a ``GradientSearch`` maximizes every unit's objective at once;
what is recorded along the way is done by step hooks (``hooks``).

How a step runs is decided here (``step_mode``): on a CPU the search checks for NaN at every
step, as it costs nothing there; on accelerators it checks every ``CHECK_EVERY`` steps, so a
step never waits for the device. With ``SearchSettings.graphs`` every step is that sync-free
step, and on CUDA, when the pipeline builds the input by device work alone (transforms drawn
ahead), it is captured once as a CUDA graph and replayed: one launch per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..engine.gradient import GradientSearch, OptimizerFactory
from ..engine.model import Precision, SearchModel
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..objectives.base import IMAGE, Objective
from ..randomness import UnitRandom
from .hooks import BatchObjective, Callback, History, Moved, Schedule, Transparency
from .pipeline import Parameterize, Pipeline
from .plan import Batch
from .recipes import OPTIMIZERS, Recipe
from .results import UnitResult

# Whether steps are CUDA graphs when not said: off until bench/speed_gpu.py has measured them
# on a GPU against the plain step (README, "Speed").
GRAPHS_DEFAULT = False


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
    # Run each step as one CUDA graph where it can be (see the module docstring).
    graphs: bool = GRAPHS_DEFAULT


# Steps between the host's NaN checks when a step must not wait for the device.
CHECK_EVERY = 64
# Steps run before a step is captured as a CUDA graph (lazy initialization, cuDNN's choices).
GRAPH_WARMUP = 3


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
                     channels_last=None if image_input else False,
                     warmup=recipe.warmup > 0) as model:
        objective = BatchObjective(pipe, model, objectives, watch_image=recipe.transparency)
        start = objective.scores(augment=False)
        _check_dependency(batch, start.depends)
        initial = start.target.detach()
        del start  # its autograd graph holds every saved activation of that forward pass
        history = History(objective, recipe.steps, len(batch.units), device)
        moved = Moved(pipe.params[0])
        transparency = Transparency(objective)
        hooks = [history, moved] + ([transparency] if recipe.transparency else []) + (
            [Callback(on_step)] if on_step is not None else [])
        search = _search(pipe, recipe, hooks, settings, recipe.warmup,
                         pre=[Schedule(pipe, model, objective, recipe)])
        for _ in range(recipe.steps - recipe.polish_steps):
            search.step(objective)
        search.check()
        if recipe.polish_steps:
            # The faithful finish: the image itself, in pixel space, without transforms.
            del search  # (and its CUDA graph's memory, before the next one is captured)
            objective.augment, objective.last, objective.image = False, None, None
            model.end_warmup()
            pipe.to_pixels()
            moved.variable = pipe.params[0]
            polish = replace(recipe, lr=recipe.polish_lr or recipe.lr, lr_schedule="constant")
            search = _search(pipe, polish, hooks, settings, 0)
            for _ in range(recipe.polish_steps):
                search.step(objective)
            search.check()
        with torch.no_grad():
            final = objective.scores(augment=False).target
            images = pipe.display(pipe.image()).detach().cpu()
    steps = history.result()
    seconds = (time.perf_counter() - began) / len(batch.units)
    maps = transparency.result()
    initial, final = initial.cpu(), final.cpu()
    dead = never_activated(initial, steps, final)
    zero = (~moved.moved).cpu()
    transformed = under_transforms(steps, recipe)
    return [UnitResult(unit.label, unit.name, unit.copy, unit.seed, batch.preset, recipe,
                       images[i], float(initial[i]), float(final[i]), steps[:, i],
                       bool(zero[i]), bool(dead[i]), seconds, batch.labels,
                       None if maps is None else maps[i], transformed=float(transformed[i]))
            for i, unit in enumerate(batch.units)]


def under_transforms(history: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """(B,) the objective under transforms at the end of their phase: the mean of the last
    tenth of the steps before the polish, from the history (steps, B)."""
    end = recipe.steps - recipe.polish_steps
    return history[max(0, end - max(1, end // 10)):end].mean(0)


def step_mode(settings: SearchSettings, capturable: bool,
              warmup: int) -> tuple[int, int | None]:
    """(check_every, graph_after) for a search (``GradientSearch``): NaN checked at every step
    on a CPU, every ``CHECK_EVERY`` steps on accelerators and with ``graphs``; captured as a
    CUDA graph with ``graphs`` on CUDA when the pipeline is ``capturable``, after the
    ``warmup`` steps of leaky gradients and ``GRAPH_WARMUP`` more."""
    device = settings.device
    check_every = 1 if device.type == "cpu" and not settings.graphs else CHECK_EVERY
    graphed = settings.graphs and device.type == "cuda" and capturable
    return check_every, (warmup + GRAPH_WARMUP if graphed else None)


def optimizer_for(recipe: Recipe, device: torch.device, graphed: bool) -> OptimizerFactory | None:
    """The recipe's optimizer: Adam fused into one kernel on CUDA (one launch per step instead
    of one per operation; the same updates to float rounding), with its step count on the
    device when a CUDA graph replays it (``capturable``)."""
    kind = OPTIMIZERS[recipe.optimizer]
    if kind is None:
        return None
    options = {"capturable": True} if graphed else {}
    if kind is torch.optim.Adam and device.type == "cuda":
        options["fused"] = True
    return lambda params: kind(params, lr=recipe.lr, betas=recipe.betas, **options)


def _search(pipe: Pipeline, recipe: Recipe, post: list, settings: SearchSettings, warmup: int,
            pre: tuple = ()) -> GradientSearch:
    """A search over the pipeline's current variables, with the recipe's optimizer (a CUDA
    graph would keep the learning rate it was captured with: a schedule runs without one)."""
    capturable = pipe.capturable and recipe.lr_schedule == "constant"
    check_every, graph_after = step_mode(settings, capturable, warmup)
    search = GradientSearch(pipe.params, maximize=True, lr=recipe.lr,
                            optimizer=optimizer_for(recipe, settings.device,
                                                    graph_after is not None),
                            grad_norm=recipe.grad_norm, batched=True, check_every=check_every,
                            graph_after=graph_after, project=pipe.param.project)
    for hook in pre:
        search.register_step_pre_hook(hook)
    for hook in post:
        search.register_step_post_hook(hook)
    return search


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
