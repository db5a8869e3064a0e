"""Rendering many units so that failures cost as little as possible.

``render_units`` renders objectives chunk by chunk and hands each finished chunk to
``on_chunk`` before starting the next, so an interruption (Ctrl-C) or a crash loses only the
chunk in progress. Within a chunk:

- out of GPU memory: the chunk is split in halves, recursively, down to one unit;
- NaN/Inf during the search: the chunk's units are rendered one by one, and a unit that
  still fails is retried with a smaller step (learning rate / ``shrink``, up to ``retries``
  times); the learning rates tried are recorded in ``settings["nan_retries"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from .errors import FeatscopeError
from .models import LoadedModel
from .objectives import Objective
from .render import AUTO, RenderResult, concat_results, preset_for, recipe, render
from .search import NonFiniteError

OnChunk = Callable[[RenderResult], None]


def render_units(model: LoadedModel, objectives: Sequence[Objective], *,
                 batch_size: int | None = None, on_chunk: OnChunk | None = None,
                 retries: int = 3, shrink: float = 4.0, seed: int = 0,
                 **render_kwargs) -> RenderResult:
    """``render`` with recovery (see the module docstring); the same arguments, plus
    ``on_chunk(result)`` called after each finished chunk of ``batch_size`` units."""
    objectives = list(objectives)
    if not objectives:
        raise FeatscopeError("nothing to render: give at least one objective")
    if batch_size is not None and batch_size < 1:
        raise FeatscopeError(f"batch size must be at least 1 (got {batch_size})")
    chunk = batch_size or len(objectives)
    parts = []
    for start in range(0, len(objectives), chunk):
        part = _robust(model, objectives[start:start + chunk], seed + start, retries, shrink,
                       render_kwargs)
        if on_chunk is not None:
            on_chunk(part)
        parts.append(part)
    return parts[0] if len(parts) == 1 else _merge(parts)


def _robust(model: LoadedModel, objectives: list[Objective], seed: int, retries: int,
            shrink: float, kwargs: dict) -> RenderResult:
    try:
        return render(model, objectives, seed=seed, **kwargs)
    except torch.OutOfMemoryError:
        if len(objectives) == 1:
            raise FeatscopeError(
                "out of GPU memory even for a single unit: use a smaller --size, a layer "
                "nearer the input, or --device cpu") from None
        _free_cached_memory()
        half = len(objectives) // 2
        return _merge([_robust(model, objectives[:half], seed, retries, shrink, kwargs),
                       _robust(model, objectives[half:], seed + half, retries, shrink, kwargs)])
    except NonFiniteError:
        if len(objectives) > 1:
            return _merge([_robust(model, [o], seed + i, retries, shrink, kwargs)
                           for i, o in enumerate(objectives)])
        return _retry_smaller_steps(model, objectives, seed, retries, shrink, kwargs)


def _retry_smaller_steps(model: LoadedModel, objectives: list[Objective], seed: int,
                         retries: int, shrink: float, kwargs: dict) -> RenderResult:
    lr = kwargs.get("lr") or recipe(preset_for(objectives[0], kwargs.get("preset", AUTO))).lr
    tried = [lr]
    for _ in range(retries):
        lr /= shrink
        tried.append(lr)
        try:
            result = render(model, objectives, seed=seed, **{**kwargs, "lr": lr})
        except NonFiniteError:
            continue
        return replace(result, settings={**result.settings,
                                         "nan_retries": {objectives[0].name: tried}})
    raise FeatscopeError(
        f"target {objectives[0].name}: the objective or its gradient became NaN/Inf at every "
        f"learning rate tried ({', '.join(f'{v:g}' for v in tried)}); the model produces "
        "non-finite values near this input (check for log/sqrt/division of activations)")


def _merge(parts: list[RenderResult]) -> RenderResult:
    merged = concat_results(parts)
    retried = {k: v for p in parts for k, v in p.settings.get("nan_retries", {}).items()}
    settings = {k: v for k, v in merged.settings.items() if k != "nan_retries"}
    return replace(merged, settings={**settings, **({"nan_retries": retried} if retried else {})})


def _free_cached_memory() -> None:
    # Releases the failed attempt's cached blocks so that the halves can use them.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
