"""A worker: the model loaded once, the request planned once, tasks run one at a time.

The same class runs in the driver's process (``--cluster none``) and as a Ray actor. It plans
the request itself (``rendering.plan_render`` on its own device), so a unit gets the seed
and the recipe it gets in ``featscope render``, and renders any batch of that plan with
``render_planned``, the code ``render`` runs: a unit's image does not depend on the worker.
Each finished unit is measured here (its robustness, as ``featscope evaluate`` measures the
saved image: the driver has no serial tail of measurements) and written to the results store
(files, then record) before the task returns, so a worker that dies loses at most the units
of its batch not yet written.
"""

from __future__ import annotations

import os
import socket
import time

import torch

from ..analysis.examples import scan_examples
from ..analysis.report import measure
from ..engine.device import placed
from ..files.writing import as_saved, file_stems
from ..inputs.base import InputKind
from ..models import LoadedModel
from ..rendering.api import plan_render, render_planned
from ..rendering.plan import Batch
from ..rendering.results import UnitResult
from ..store.store import ResultStore
from ..transforms.affine import resize_to
from .tasks import ExamplesTask, Load, RenderTask, Request, Task, TaskResult


class AtlasWorker:
    """One worker of an atlas run (see the module docstring).

    ``threads``: torch's CPU threads in this worker (its share of the cores; None leaves the
    process's setting). ``loaded``/``kind``: a model already loaded in this process
    (otherwise ``load()`` loads it).
    """

    def __init__(self, request: Request, load: Load | None = None, threads: int | None = None,
                 loaded: LoadedModel | None = None, kind: InputKind | None = None):
        if threads is not None:
            torch.set_num_threads(threads)
        if loaded is None or kind is None:
            if load is None:
                raise ValueError("a worker needs a loaded model or a function that loads it")
            loaded, kind = load()
        self.request = request
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.name = file_stems([f"{self.host}-{self.pid}"])[0]
        arguments = {**request.arguments, "parameterize": getattr(kind, "parameterize", None)}
        self.plan = plan_render(loaded, request.objectives, labels=request.labels,
                                only=request.todo, **arguments)
        self.store = ResultStore(request.store, request.settings, kind, journal=self.name)

    def describe(self) -> dict:
        """Where this worker runs: host, pid, device and threads."""
        return {"name": self.name, "host": self.host, "pid": self.pid,
                "device": str(self.plan.search.device), "threads": torch.get_num_threads()}

    def batches(self) -> list[Batch]:
        """The batches of the units to render, as planned for this worker's device."""
        return self.plan.batches

    def run(self, task: Task) -> TaskResult:
        began = time.perf_counter()
        result = (self._render(task) if isinstance(task, RenderTask) else self._examples(task))
        result.seconds = time.perf_counter() - began
        return result

    def _render(self, task: RenderTask) -> TaskResult:
        """Render the batch and store its units. A batch that comes back after its worker
        died keeps the units that worker stored: only the others are rendered."""
        units = task.batch.units
        kept = {}
        if task.attempts:
            kept = {u.label: found for u in units if (found := self.store.get(u.label))}
        missing = [u for u in units if u.label not in kept]
        stored = {}
        if missing:
            batch = task.batch if len(missing) == len(units) else \
                Batch(task.batch.preset, task.batch.recipe, missing)
            results = render_planned(self.plan, batch)
            self._measure(results, batch)
            for result in results:
                stored[result.label] = self.store.put(result)
        return TaskResult([kept.get(u.label) or stored[u.label] for u in units], list(stored))

    def _measure(self, results: list[UnitResult], batch: Batch) -> None:
        """Each rendered image's robustness in its result's ``metrics``: ``measure`` on the
        image as its PNG reads back, at the model's input size, on this worker's device (what
        ``featscope evaluate`` and the gallery measure on the saved file)."""
        loaded = self.plan.loaded
        targets = {unit.label: unit.objective for unit in batch.units}
        done = [r for r in results if r.image is not None and r.error is None]
        if not done or not loaded.is_image:
            return
        size = tuple(loaded.input_shape[1:])
        images = torch.cat([resize_to(as_saved(r.image)[None], size) for r in done])
        with placed(loaded.module, self.plan.search.device):  # images go there by chunks
            measured = measure(loaded, [targets[r.label] for r in done], images)
        for i, result in enumerate(done):
            result.metrics.update(measured.metrics[i])

    def _examples(self, task: ExamplesTask) -> TaskResult:
        found = scan_examples(self.plan.loaded, self.request.examples, task.paths,
                              k=self.request.top_k, device=self.plan.search.device,
                              progress=False)
        return TaskResult(examples=found)
