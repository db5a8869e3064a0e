"""The batching plan: which units render together, in which order, in batches of what size.

Every path that renders goes through ``plan_batches`` (``render``, the unit commands and
their results store, recovery from failures, the benchmarks), so ``batch_size`` means the
same everywhere: the most units whose searches share one forward and backward pass.

- Units are grouped by the preset that renders them (``auto`` picks one per objective and
  model) and
  by the layers their objectives read, so that a batch runs the model only as deep as its
  own layers need; groups keep the order in which they first appear in the request.
- Units coupled by a term (the copies of a target that a diversity penalty compares) stay in
  one batch.
- The batch size is the user's, or the device's default (``default_batch_size``): on a
  CPU about one 224 px image; on a CUDA GPU as many units as its free memory holds for the
  group's layers (from the bytes one unit's forward pass writes up to its deepest layer).

A unit's result does not depend on its batch: every unit draws its randomness from its own
seed (``featscope.randomness``), so the plan only decides speed and memory, never images.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch

from ..engine.device import free_memory, module_device
from ..engine.probing import MODEL_OUTPUT, forward_bytes
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..objectives.base import IMAGE, Objective
from ..randomness import unit_seed
from .recipes import Recipe, architecture_of, preset_for, recipe

# On a CPU the cost of a step per unit grows with the batch (the feature maps no longer fit
# the caches): for 224 px images batch 1 is the fastest (bench/speed.py), so a CPU batch holds
# about one 224 px image's worth of input elements. Accelerators want many units per batch.
CPU_BATCH_ELEMENTS = 3 * 224 * 224
# Accelerators whose free memory cannot be read (MPS), or a model that cannot be measured.
ACCELERATOR_BATCH = 32
# On a CUDA GPU: the share of the free memory (after the model's weights) that a batch's
# search may fill, the bytes it holds per byte of a unit's forward outputs (what backward
# keeps, the gradients in flight, the allocator's slack), and the most units in one batch
# (throughput no longer grows long before, and a sheet of 64 is one batch well below it).
MEMORY_SHARE = 0.6
BYTES_PER_FORWARD_BYTE = 3
MAX_ACCELERATOR_BATCH = 256
# Images per forward pass without gradients (evaluation, dataset examples): memory is then
# small, and larger batches are faster on every device.
INFERENCE_BATCH = 32


def default_batch_size(loaded: LoadedModel, device: torch.device, views: int = 1,
                       layers: Collection[str] = (), free: int | None = None) -> int:
    """Units per batch when none is given, for inputs of ``loaded`` seen ``views`` times a
    step: on a CPU about one 224 px image; on a CUDA GPU what its ``free`` memory (bytes; read
    from the device when None) holds for a search of ``layers`` (``memory_batch``)."""
    if device.type == "cpu":
        return max(1, CPU_BATCH_ELEMENTS // (math.prod(loaded.input_shape) * max(1, views)))
    free = free_memory(device) if free is None else free
    unit = _unit_bytes(loaded, layers) if free is not None else None
    if unit is None:
        return ACCELERATOR_BATCH
    # Weights already on the device are in the driver's reading; others will be moved there.
    moved = module_device(loaded.module).type != device.type
    weights = _weight_bytes(loaded.module) if moved else 0
    return memory_batch(free - weights, unit * max(1, views))


def memory_batch(free: int, unit: int) -> int:
    """Units per batch on a GPU with ``free`` bytes for the search when one unit's forward pass
    writes ``unit`` bytes: ``MEMORY_SHARE`` of it at ``BYTES_PER_FORWARD_BYTE`` per byte,
    between 1 and ``MAX_ACCELERATOR_BATCH``."""
    fits = int(max(0, free) * MEMORY_SHARE) // max(1, unit * BYTES_PER_FORWARD_BYTE)
    return max(1, min(MAX_ACCELERATOR_BATCH, fits))


def _unit_bytes(loaded: LoadedModel, layers: Collection[str]) -> int | None:
    """Bytes one unit's forward pass writes up to the deepest of ``layers`` (the whole model
    without layers), measured on one mid-grey input where the model is; None if it fails."""
    example = torch.full((1, *loaded.input_shape), 0.5, device=module_device(loaded.module))
    try:
        return forward_bytes(loaded.module, loaded.normalization.to(example.device)(example),
                             sorted(layers) or [MODEL_OUTPUT])
    except Exception:  # noqa: BLE001 (a model that needs other inputs: the fixed default)
        return None


def _weight_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size < 1:
        raise FeatscopeError(f"batch size must be at least 1 (got {batch_size})")


@dataclass(frozen=True)
class Unit:
    """One image to search for: copy ``copy`` of the target ``objective`` (``name``)."""

    index: int  # position in the request
    objective: Objective  # the target (penalties are added per batch, from its recipe)
    label: str  # unique in the request: how results and files are named
    copy: int  # the n-th unit of the same objective name in the request
    seed: int  # derived from (the user's seed, name, copy): the unit's own randomness
    start: int | None = None  # row of the start images (accentuation), if any

    @property
    def name(self) -> str:
        return self.objective.name


@dataclass
class Batch:
    """Units searched together with one recipe (``preset`` names it)."""

    preset: str
    recipe: Recipe
    units: list[Unit] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [u.label for u in self.units]

    def blocks(self) -> list[list[Unit]]:
        """The units in runs that must stay together (copies compared by diversity)."""
        if not self.recipe.diversity:
            return [[u] for u in self.units]
        by_name: dict[str, list[Unit]] = {}
        for unit in self.units:
            by_name.setdefault(unit.name, []).append(unit)
        return list(by_name.values())

    def split(self) -> list[Batch]:
        """Two halves (at block boundaries), or the blocks themselves."""
        blocks = self.blocks()
        if len(blocks) < 2:
            return [self]
        half = len(blocks) // 2
        return [Batch(self.preset, self.recipe, [u for b in part for u in b])
                for part in (blocks[:half], blocks[half:])]


def make_units(objectives: Sequence[Objective], seed: int, labels: Sequence[str] | None = None,
               starts: int = 0) -> list[Unit]:
    """Units for a request: copies counted per objective name, seeds derived per unit.

    ``starts``: how many start images there are (1 is shared by every unit, otherwise one
    per unit).
    """
    if labels is not None and len(labels) != len(objectives):
        raise ValueError(f"{len(labels)} labels for {len(objectives)} objectives")
    seen: dict[str, int] = {}
    units = []
    for i, objective in enumerate(objectives):
        copy = seen.get(objective.name, 0)
        seen[objective.name] = copy + 1
        label = labels[i] if labels is not None else (
            objective.name if copy == 0 else f"{objective.name}#{copy}")
        start = None if not starts else (0 if starts == 1 else i)
        units.append(Unit(i, objective, label, copy, unit_seed(seed, objective.name, copy), start))
    if len({u.label for u in units}) != len(units):
        raise FeatscopeError("two units of the request have the same label; give each a "
                             "distinct one")
    return units


def _layers(objective: Objective) -> frozenset[str]:
    return frozenset(objective.layers) - {IMAGE}


def plan_batches(units: Sequence[Unit], *, preset: str, overrides: dict,
                 loaded: LoadedModel, device: torch.device,
                 batch_size: int | None = None) -> list[Batch]:
    """The batches that render ``units`` (see the module docstring)."""
    check_batch_size(batch_size)
    recipes: dict[str, Recipe] = {}
    groups: dict[tuple, Batch] = {}
    architecture = architecture_of(loaded.module, loaded.is_image)
    for unit in units:
        name = preset_for(unit.objective, preset, architecture)
        if name not in recipes:
            recipes[name] = recipe(name, **overrides)
        key = (name, _layers(unit.objective))
        groups.setdefault(key, Batch(name, recipes[name])).units.append(unit)
    batches: list[Batch] = []
    for group in groups.values():
        size = batch_size or default_batch_size(loaded, device, group.recipe.views,
                                                 _layers(group.units[0].objective))
        current: list[Unit] = []
        for block in group.blocks():
            if len(block) > size and batch_size is not None:
                raise FeatscopeError(
                    f"diversity compares the copies of a target in one batch: the "
                    f"{len(block)} copies of {block[0].name} need a batch size of at least "
                    f"{len(block)} (or leave the batch size unset)")
            if current and len(current) + len(block) > size:
                batches.append(Batch(group.preset, group.recipe, current))
                current = []
            current = current + block
        if current:
            batches.append(Batch(group.preset, group.recipe, current))
    return batches
