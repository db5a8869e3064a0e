"""Rendering a batch so that a failure costs as little as possible.

- Out of GPU memory: the batch is split in halves, recursively, down to one unit (or one
  group of copies that a diversity penalty compares).
- NaN/Inf during the search: the batch's units are rendered one by one (groups of copies
  together), and one that still fails is retried with a smaller step (learning rate /
  ``shrink``, up to ``retries`` times); the learning rates tried are kept in its result. A
  unit that fails at every step size comes back as a failed ``UnitResult`` (with its
  ``error``) instead of stopping the run: the others are kept.

Units draw their randomness from their own seeds, so splitting a batch changes no image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from ..engine.gradient import NonFiniteError
from ..errors import FeatscopeError
from .plan import Batch
from .recipes import Recipe
from .results import UnitResult

RunBatch = Callable[[Batch, Recipe], list[UnitResult]]


def render_robustly(run: RunBatch, batch: Batch, *, retries: int = 3,
                    shrink: float = 4.0) -> list[UnitResult]:
    """``run(batch, recipe)`` with recovery from out-of-memory errors and NaN/Inf."""
    try:
        return run(batch, batch.recipe)
    except torch.OutOfMemoryError:
        parts = batch.split()
        if len(parts) == 1:
            raise FeatscopeError(
                f"out of GPU memory even for a single unit ({', '.join(batch.labels)}): use a "
                "smaller --size, a layer nearer the input, or --device cpu") from None
        _free_cached_memory()
        return [r for part in parts for r in render_robustly(run, part, retries=retries,
                                                             shrink=shrink)]
    except NonFiniteError:
        blocks = batch.blocks()
        if len(blocks) > 1:
            return [r for block in blocks
                    for r in render_robustly(run, Batch(batch.preset, batch.recipe, block),
                                             retries=retries, shrink=shrink)]
        return _smaller_steps(run, batch, retries, shrink)


def _smaller_steps(run: RunBatch, batch: Batch, retries: int, shrink: float) -> list[UnitResult]:
    lr = batch.recipe.lr
    tried = [lr]
    for _ in range(retries):
        lr /= shrink
        tried.append(lr)
        try:
            results = run(batch, replace(batch.recipe, lr=lr))
        except NonFiniteError:
            continue
        return [replace(r, nan_retries=list(tried)) for r in results]
    error = (f"the objective or its gradient became NaN/Inf at every learning rate tried "
             f"({', '.join(f'{v:g}' for v in tried)}); the model produces non-finite values "
             "near this input (check for log/sqrt/division of activations)")
    return [UnitResult.failed(u.label, u.name, u.copy, u.seed, batch.preset, batch.recipe,
                              error, list(tried)) for u in batch.units]


def _free_cached_memory() -> None:
    # Releases the failed attempt's cached blocks so that the halves can use them.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
