"""An atlas run's work: what every worker gets once (``Request``), the tasks it is handed one
at a time (``RenderTask``, ``ExamplesTask``), and what a task gives back (``TaskResult``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..analysis.examples import Examples
from ..inputs.base import InputKind
from ..models import LoadedModel
from ..objectives.base import Objective
from ..rendering.plan import Batch
from ..store.store import StoredUnit, settings_key

# Loads the model and its input kind in a worker, once (a picklable callable: Ray sends it to
# every worker, and calls it again in an actor that restarts).
Load = Callable[[], tuple[LoadedModel, InputKind]]

# Images per dataset-examples task.
EXAMPLES_SHARD = 256


@dataclass(frozen=True)
class Request:
    """What every worker of a run gets once: the request and where its units go."""

    objectives: list[Objective]  # one per unit, in the request's order (copies repeated)
    labels: list[str]  # the units' labels, in the same order
    todo: list[str]  # the labels this run renders (the others are stored already)
    arguments: dict  # ``render``'s keyword arguments (``Job.render_arguments``)
    store: str  # the results store's root: a folder every worker can write, or an fsspec URL
    settings: dict  # what decides a unit's result: the store's key
    examples: list[Objective] = field(default_factory=list)  # one per target, for --images
    top_k: int = 5

    @property
    def key(self) -> str:
        return settings_key(self.settings)


@dataclass
class RenderTask:
    """Render one batch of the plan (units of one layer and preset) and store its units."""

    batch: Batch
    attempts: int = 0  # how many workers died with it; >0: units stored before are kept

    @property
    def units(self) -> int:
        return len(self.batch.units)

    def describe(self) -> str:
        layers = sorted({layer for u in self.batch.units for layer in u.objective.layers})
        return f"{', '.join(layers) or 'input'} ({self.units} unit{'s' * (self.units != 1)})"


@dataclass
class ExamplesTask:
    """Score one shard of the image folder with every target: its top-k lists."""

    shard: int
    paths: list[str]
    attempts: int = 0

    units = 0

    def describe(self) -> str:
        return f"dataset examples, shard {self.shard + 1} ({len(self.paths)} images)"


Task = RenderTask | ExamplesTask


@dataclass
class TaskResult:
    """A finished task: the units of a batch as stored, or a shard's examples."""

    units: list[StoredUnit] = field(default_factory=list)  # the batch's, in its order
    stored: list[str] = field(default_factory=list)  # labels this task stored (not found)
    examples: Examples | None = None
    seconds: float = 0.0  # the task's time in the worker


def shards(paths: Sequence[str], size: int = EXAMPLES_SHARD) -> list[ExamplesTask]:
    """The image files in tasks of ``size``, in the folder's order."""
    return [ExamplesTask(i, list(paths[start:start + size]))
            for i, start in enumerate(range(0, len(paths), size))]


def failed_units(task: RenderTask, key: str, error: str) -> list[StoredUnit]:
    """The units of a batch given up on, as failed units (no files; a rerun renders them)."""
    return [StoredUnit(u.label, u.name, u.copy, u.seed, task.batch.preset, key, error=error,
                       batch=task.batch.labels) for u in task.batch.units]
