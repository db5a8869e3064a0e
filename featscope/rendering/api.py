"""Maximally activating inputs: ``render`` and ``accentuate``; ``plan_render`` and
``render_planned`` for renderers that spread a request's batches over processes.

``render`` searches for the input with the shape of the model's input (an image, a 1-D
signal, a volume, a plain vector) that maximizes each objective, one unit per objective:

1. the request becomes units, each with its own seed (``plan.make_units``);
2. the batching plan groups them (``plan.plan_batches``);
3. each batch gets its recipe's penalties as terms and is searched (``batch.render_batch``)
   with recovery from running out of memory and from NaN (``recovery``);
4. each finished batch is handed to ``on_batch`` (the results store saves it there), and the
   units come back in the request's order.

Steps 1-2 are ``plan_render``, step 3 for one batch is ``render_planned``: a worker process
that plans the same request renders any of its batches exactly as ``render`` would.

The model is frozen (eval mode, no weight gradients) and hooked only where the objectives
read it; the forward pass stops at the deepest probed layer; afterwards it is as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..engine.device import resolve_device
from ..engine.model import AUTO_PRECISION, resolve_precision
from ..errors import FeatscopeError
from ..files.images import load_image, mode_for
from ..models import LoadedModel, Normalization, identity_normalization
from ..objectives.base import Objective
from ..objectives.binding import bind_objectives
from ..objectives.penalties import DEFAULT_CLOSENESS, Closeness, Diversity, TotalVariation
from ..objectives.priors import BatchNormStatistics
from ..progress import progress_bar
from ..transforms.affine import resize_to
from .batch import GRAPHS_DEFAULT, SearchSettings, render_batch
from .pipeline import Parameterize
from .plan import Batch, Unit, check_batch_size, make_units, plan_batches
from .recipes import AUTO, Recipe, check_preset, image_size, recipes_of
from .recovery import render_robustly
from .results import RenderError, RenderResult, UnitResult

OnBatch = Callable[[list[UnitResult]], None]


@dataclass
class RenderPlan:
    """A request made ready to render: its units, its batches, and what every batch shares.

    ``units`` is the whole request (each unit's seed and copy come from its place in it);
    ``batches`` hold the units to render now (all, or those named by ``only``).
    """

    loaded: LoadedModel
    units: list[Unit]
    batches: list[Batch]
    search: SearchSettings
    starts: torch.Tensor | None  # (1 or B, C, H, W) start images in [0, 1], if any
    diversity_layer: str | None = None
    retries: int = 3
    shrink: float = 4.0
    prior: BatchNormStatistics | None = None  # when a batch's recipe asks for it


def plan_render(model: nn.Module | LoadedModel, objectives: Objective | Sequence[Objective], *,
                preset: str = AUTO, steps: int | None = None, lr: float | None = None,
                param: str | None = None, size: int | None = None,
                transforms: str | None = None, seed: int = 0,
                device: str | torch.device | None = None, batch_size: int | None = None,
                input_shape: Sequence[int] | None = None,
                normalization: Normalization | None = None, max_norm: float | None = None,
                stop_early: bool = True, labels: Sequence[str] | None = None,
                only: Collection[str] | None = None, start: torch.Tensor | None = None,
                spectrum: torch.Tensor | None = None, diversity_layer: str | None = None,
                parameterize: Parameterize | None = None, precision: str = AUTO_PRECISION,
                fold_batchnorm: bool = True, retries: int = 3, shrink: float = 4.0,
                graphs: bool = GRAPHS_DEFAULT, **settings) -> RenderPlan:
    """Check a request and plan it: ``render``'s arguments without its callbacks (see
    ``render`` for each).

    ``only``: the labels to render now (the others count only for seeds and copies: a
    resumed request gives each unit the seed it has in the whole request).
    """
    objective_list = [objectives] if isinstance(objectives, Objective) else list(objectives)
    if not objective_list:
        raise FeatscopeError("nothing to render: give at least one objective")
    loaded = as_loaded(model, input_shape, normalization)
    target = resolve_device(device)
    precision = resolve_precision(precision, target)
    check_preset(preset)
    check_batch_size(batch_size)
    overrides = {"steps": steps, "lr": lr, "param": param, "size": size,
                 "transforms": transforms, **settings}
    recipes_of(preset, **overrides)  # every bad setting is reported before any work
    bound = bind_objectives(objective_list, loaded.module, loaded.input_shape,
                            loaded.class_names)
    starts = _start_images(start, loaded, len(bound))
    units = make_units(bound, seed, labels, 0 if starts is None else len(starts))
    wanted = units if only is None else [u for u in units if u.label in set(only)]
    batches = plan_batches(wanted, preset=preset, overrides=overrides, loaded=loaded,
                           device=target, batch_size=batch_size)
    search = SearchSettings(target, precision, fold_batchnorm, stop_early, max_norm,
                            parameterize, spectrum, graphs)
    wants_prior = any(b.recipe.bn_prior for b in batches)
    prior = BatchNormStatistics.of_model(loaded.module) if wants_prior else None
    if wants_prior and prior is None:
        raise FeatscopeError(f"bn_prior (--bn-prior) needs batch norms that keep running "
                             f"statistics; {loaded.name} has none (valid here: 0)")
    return RenderPlan(loaded, units, batches, search, starts, diversity_layer, retries, shrink,
                      prior)


def render_planned(plan: RenderPlan, batch: Batch,
                   on_step: Callable[[int, torch.Tensor], None] | None = None
                   ) -> list[UnitResult]:
    """One batch of ``plan`` (or any batch of its units) with its recipe's penalties,
    recovering from running out of memory and from NaN (``recovery``)."""
    searched, batch_starts = _with_penalties(batch, plan.loaded, plan.starts,
                                             plan.diversity_layer, plan.prior)
    position = {u.label: i for i, u in enumerate(batch.units)}

    def run(part: Batch, recipe: Recipe) -> list[UnitResult]:
        rows = [position[u.label] for u in part.units]
        return render_batch(plan.loaded, part, [searched[i] for i in rows], plan.search,
                            None if batch_starts is None else batch_starts[rows], on_step,
                            recipe)

    return render_robustly(run, batch, retries=plan.retries, shrink=plan.shrink)


def render(model: nn.Module | LoadedModel, objectives: Objective | Sequence[Objective], *,
           preset: str = AUTO, steps: int | None = None, lr: float | None = None,
           param: str | None = None, size: int | None = None,
           transforms: str | None = None, seed: int = 0, device: str | torch.device | None = None,
           batch_size: int | None = None, input_shape: Sequence[int] | None = None,
           normalization: Normalization | None = None, max_norm: float | None = None,
           stop_early: bool = True, progress: bool = False,
           on_step: Callable[[int, torch.Tensor], None] | None = None,
           on_batch: OnBatch | None = None, labels: Sequence[str] | None = None,
           only: Collection[str] | None = None,
           start: torch.Tensor | None = None, spectrum: torch.Tensor | None = None,
           diversity_layer: str | None = None, parameterize: Parameterize | None = None,
           precision: str = AUTO_PRECISION, fold_batchnorm: bool = True,
           retries: int = 3, shrink: float = 4.0, graphs: bool = GRAPHS_DEFAULT,
           **settings) -> RenderResult:
    """Search for the input that maximizes each objective: one image (unit) per objective.

    ``preset`` names a recipe (``PRESETS``); the default, "auto", renders classes (objectives
    on the model's output) with ``legible`` and every other unit with ``featscope``, and
    every unit of a transformer (an image model without batch norm) with ``pii``
    (``preset_for``);
    ``steps``, ``lr``, ``param``, ``size``, ``transforms`` and other settings override recipe
    fields (crops, noise, diversity, closeness, warmup, ...).
    ``model`` is a ``LoadedModel`` (from ``load_model``) or any ``nn.Module`` with an
    ``input_shape`` (C, H, W) or (...,) given or as its attribute.
    Units are rendered in batches of ``batch_size`` (default: the fastest for the device,
    ``plan.default_batch_size``). Each unit draws its randomness from a seed derived from
    ``seed``, its objective's name and its copy index, so its image does not depend on the
    batch it shares; repeat an objective N times to get N units of it (with ``diversity``,
    N different images). On the CPU a seed gives the same result every time.
    ``start`` (C, H, W), (1, ...) or (B, ...) in [0, 1]: accentuation, the search starts
    from this image (kept close to it by ``closeness``). ``spectrum``: MACO's log-magnitude
    (3, S, S). ``diversity_layer``: where diversity compares images (default: each
    objective's own layer). ``parameterize`` replaces the raw-tensor search space of
    non-image inputs (see ``featscope.inputs``). ``precision="bfloat16"``/``"float16"``
    runs the model under autocast, which is faster on GPUs; the search stays in float32.
    ``"auto"`` (the default): bfloat16 on CUDA GPUs with native bfloat16, float32 elsewhere
    (``engine.model.resolve_precision``). ``fold_batchnorm``: batch norms that directly
    follow a convolution are folded into it for the search (same values, less work per
    step). ``graphs``: each search step captured once as a CUDA graph and replayed (on CUDA,
    for recipes whose transforms draw ahead: ``featscope`` and the others without Lucid's
    chained transforms; elsewhere the same step runs uncaptured), which removes the per-step
    launch cost; images as without it, to float rounding (default: ``batch.GRAPHS_DEFAULT``).
    ``on_batch(units)`` is called with each finished batch; ``labels`` name the units (they
    must be distinct); ``only`` renders just the units with these labels (seeds and copies
    still count the whole request), and the result holds just those. A unit whose search
    meets NaN/Inf is retried ``retries`` times with the learning rate divided by ``shrink``;
    if some units still fail, the others are finished and ``RenderError`` is raised with the
    whole result.
    """
    plan = plan_render(model, objectives, preset=preset, steps=steps, lr=lr, param=param,
                       size=size, transforms=transforms, seed=seed, device=device,
                       batch_size=batch_size, input_shape=input_shape,
                       normalization=normalization, max_norm=max_norm, stop_early=stop_early,
                       labels=labels, only=only, start=start, spectrum=spectrum,
                       diversity_layer=diversity_layer, parameterize=parameterize,
                       precision=precision, fold_batchnorm=fold_batchnorm, retries=retries,
                       shrink=shrink, graphs=graphs, **settings)
    done: dict[str, UnitResult] = {}
    planned = [u for b in plan.batches for u in b.units]
    total = sum(b.recipe.steps * len(b.units) for b in plan.batches)
    with progress_bar(total, f"rendering {len(planned)} units", progress) as bar:
        def step_done(step: int, values: torch.Tensor) -> None:
            bar.update(len(values))
            if on_step is not None:
                on_step(step, values)

        for batch in plan.batches:
            finished = render_planned(plan, batch, step_done)
            if on_batch is not None:
                on_batch(finished)
            done.update((r.label, r) for r in finished)
    result = RenderResult([done[u.label] for u in plan.units if u.label in done],
                          str(plan.search.device), tuple(plan.loaded.input_shape))
    if result.failed:
        raise RenderError(result)
    return result


def _with_penalties(batch: Batch, loaded: LoadedModel, starts: torch.Tensor | None,
                    diversity_layer: str | None, prior: BatchNormStatistics | None = None
                    ) -> tuple[list[Objective], torch.Tensor | None]:
    """Each unit's search objective, its target minus its recipe's penalties and priors (one
    closeness term per start image, one diversity term per target, one total variation term
    and one batch-norm prior, each shared by the units that use it, so evaluated once per
    step), and the units' start images at the recipe's image size (B, C, h, w)."""
    recipe = batch.recipe
    sized = None
    if starts is not None:
        size = image_size(recipe, *loaded.input_shape[1:])
        sized = resize_to(starts, size).clamp(0, 1)
    closeness: dict[int, Closeness] = {}
    diversity: dict[str, Diversity] = {}
    smoothness = TotalVariation()  # one term, evaluated once for the whole batch
    objectives = []
    for unit in batch.units:
        objective = unit.objective
        if recipe.tv:
            objective = objective - recipe.tv * smoothness
        if recipe.closeness and unit.start is not None:
            term = closeness.setdefault(unit.start, Closeness(sized[unit.start]))
            objective = objective - recipe.closeness * term
        if recipe.diversity:
            layer = diversity_layer or sorted(unit.objective.layers)[0]
            term = diversity.setdefault(unit.name, Diversity(layer,
                                                             unit.objective.layout_of(layer)))
            objective = objective - recipe.diversity * term
        if recipe.bn_prior and prior is not None:
            objective = objective - recipe.bn_prior * prior
        objectives.append(objective)
    rows = None if sized is None else torch.stack([sized[u.start] for u in batch.units])
    return objectives, rows


def as_loaded(model: nn.Module | LoadedModel, input_shape: Sequence[int] | None = None,
              normalization: Normalization | None = None) -> LoadedModel:
    """``model`` as a ``LoadedModel``: a plain module takes ``input_shape`` (no batch dim)
    from the argument or from its own ``input_shape`` attribute."""
    if isinstance(model, LoadedModel):
        if input_shape is None and normalization is None:
            return model
        return LoadedModel(model.module, model.name, tuple(input_shape or model.input_shape),
                           normalization or model.normalization, model.class_names)
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise FeatscopeError("render needs input_shape=(C, H, W) (no batch dim) for a plain "
                             "nn.Module, as an argument or as the module's input_shape attribute")
    shape = tuple(int(s) for s in shape)
    channels = shape[0] if len(shape) == 3 else 1
    return LoadedModel(model, type(model).__name__, shape,
                       normalization or identity_normalization(channels),
                       getattr(model, "class_names", None))


def _start_images(start: torch.Tensor | None, loaded: LoadedModel,
                  batch: int) -> torch.Tensor | None:
    """The accentuation start (C, H, W), (1, ...) or (B, ...) in [0, 1] -> (1 or B, C, H, W)."""
    if start is None:
        return None
    if not loaded.is_image:
        raise FeatscopeError("a start image needs an image model (input (C, H, W), C 1 or 3)")
    channels = loaded.input_shape[0]
    start = start[None] if start.dim() == 3 else start
    if start.dim() != 4 or start.shape[1] != channels or start.shape[0] not in (1, batch):
        raise FeatscopeError(f"the start image must be (1 or {batch}, {channels}, H, W) in "
                             f"[0, 1]; got {tuple(start.shape)}")
    return start.float()


def accentuate(model: nn.Module | LoadedModel, objectives: Objective | Sequence[Objective],
               image: torch.Tensor | str | Path, *, closeness: float = DEFAULT_CLOSENESS,
               param: str = "pixel", **kwargs) -> RenderResult:
    """Feature accentuation: render each objective starting from ``image`` ((C, H, W) or
    (1, C, H, W) in [0, 1], or an image file), kept close to it, so the result stays that
    image while showing what in it (or added to it) drives the target. Other keyword
    arguments go to ``render``."""
    if not isinstance(image, torch.Tensor):
        channels = model.input_shape[0] if isinstance(model, LoadedModel) else 3
        image = load_image(image, mode_for(channels))
    return render(model, objectives, start=image, closeness=closeness, param=param, **kwargs)
