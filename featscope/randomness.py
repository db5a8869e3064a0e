"""Per-unit randomness: each unit's random draws come from its own generator.

A unit is one image being searched for: a target (its objective's name) and a copy index
(the n-th image of that target in one request). Its seed is derived from the user's seed,
the target and the copy, so the unit's start, transforms, crops and noise never depend on
which other units share its batch, the batch size, the order of the request, or the process
that renders it.

``UnitRandom`` holds one CPU ``torch.Generator`` per batch element and stacks their draws
along the batch: element i of ``rand(k)`` (B, k) comes from unit i's generator alone. Drawing
on the CPU gives the same numbers on every device.

Functions that take randomness also accept a plain ``torch.Generator`` (the way Lucid draws:
one draw for the whole batch); ``per_element`` and ``per_batch`` give both kinds one meaning.

A step's draws can also be made ahead: ``UnitRandom.ahead(steps, layout)`` makes, for every
unit, the draws that ``steps`` calls of ``step_draws(random, B, layout)`` would make, in the
same order from the same generator, so a search can read them on its device by step index
(no host work or transfer per step) and every image stays what it was.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Literal

import torch

Random = "UnitRandom | torch.Generator"
# One draw of a step, for one element: ("rand", shape) uniform in [0, 1), ("randn", shape) normal.
Draw = tuple[Literal["rand", "randn"], tuple[int, ...]]


def unit_seed(seed: int, target: str, copy: int = 0) -> int:
    """A 63-bit seed for copy ``copy`` of ``target`` under the user's ``seed``."""
    digest = hashlib.sha256(f"{int(seed)}\x1f{target}\x1f{int(copy)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class UnitRandom:
    """One generator per batch element; ``rand``/``randn`` return (B, *shape)."""

    def __init__(self, seeds: Sequence[int]):
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def rand(self, *shape: int) -> torch.Tensor:
        """(B, *shape) uniform in [0, 1); row i from unit i's generator."""
        return torch.stack([torch.rand(shape, generator=g) for g in self.generators])

    def randn(self, *shape: int) -> torch.Tensor:
        """(B, *shape) standard normal; row i from unit i's generator."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators])

    def ahead(self, steps: int, layout: Sequence[Draw]) -> list[torch.Tensor]:
        """For each draw of ``layout``, (steps, B, *shape): what ``steps`` successive calls of
        ``step_draws(self, B, layout)`` would return, drawn now. A layout of uniform draws is
        drawn in one call per unit: a CPU generator's uniform stream does not depend on how it
        is split (``tests/test_architecture.py`` checks it); normal draws are made one by one."""
        sizes = [math.prod(shape) for _, shape in layout]
        if all(kind == "rand" for kind, _ in layout):
            flat = torch.stack([torch.rand((steps, sum(sizes)), generator=g)
                                for g in self.generators], 1)
        else:
            flat = torch.stack([torch.stack([
                torch.cat([_draw(kind, shape, g).reshape(-1) for kind, shape in layout])
                for g in self.generators]) for _ in range(steps)])
        out, offset = [], 0
        for (_, shape), size in zip(layout, sizes):
            out.append(flat[..., offset:offset + size].reshape(steps, len(self), *shape))
            offset += size
        return out

    def row(self, index: int) -> UnitRandom:
        """The randomness of element ``index`` alone (the same generator, not a copy)."""
        single = UnitRandom.__new__(UnitRandom)
        single.seeds, single.generators = [self.seeds[index]], [self.generators[index]]
        return single


def per_element(random: UnitRandom | torch.Generator, batch: int, *shape: int,
                normal: bool = False) -> torch.Tensor:
    """(batch, *shape) draws, a different one for every element."""
    if isinstance(random, torch.Generator):
        draw = torch.randn if normal else torch.rand
        return draw((batch, *shape), generator=random)
    _check_rows(random, batch)
    return random.randn(*shape) if normal else random.rand(*shape)


def per_batch(random: UnitRandom | torch.Generator, batch: int, *shape: int) -> torch.Tensor:
    """(1 or batch, *shape) uniform draws for a transform's parameters: one draw shared by the
    whole batch for a plain generator (as Lucid draws), one per element for ``UnitRandom``."""
    if isinstance(random, torch.Generator):
        return torch.rand((1, *shape), generator=random)
    _check_rows(random, batch)
    return random.rand(*shape)


def step_draws(random: UnitRandom | torch.Generator, batch: int, layout: Sequence[Draw],
               shared: bool = False) -> list[torch.Tensor]:
    """One step's draws of ``layout``, in order: (batch, *shape) each, row i from unit i's
    generator; for a plain generator with ``shared``, (1, *shape): one draw for the batch."""
    if shared and isinstance(random, torch.Generator):
        return [_draw(kind, (1, *shape), random) for kind, shape in layout]
    return [per_element(random, batch, *shape, normal=kind == "randn") for kind, shape in layout]


def _draw(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return (torch.randn if kind == "randn" else torch.rand)(shape, generator=generator)


def _check_rows(random: UnitRandom, batch: int) -> None:
    if len(random) != batch:
        raise ValueError(f"{len(random)} unit generators for a batch of {batch}")
