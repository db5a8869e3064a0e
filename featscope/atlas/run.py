"""One atlas run: its workers (started when there is work for them) and its two phases,
dataset examples and rendering.

    with Atlas(request, load, cluster="local", workers=2, folder=out) as atlas:
        found = atlas.examples(folder_of_images)       # shards on the workers, merged
        atlas.render(on_units)                          # batches on the workers

``render`` asks one worker for the batching plan of the units still missing (planned for its
device), queues one task per batch, and hands the units of each finished task to
``on_units`` (already in the store; with a store at a URL, copied into the local ``mirror``
first). Leaving the ``with`` block, also by Ctrl-C or an error, stops the workers and, if
this run started Ray, Ray; the store holds only whole units, so the same request run again
goes on where this one stopped.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from ..analysis.examples import Examples, merge_examples
from ..errors import FeatscopeError
from ..files.images import find_images
from ..inputs.base import InputKind
from ..models import LoadedModel
from ..store.store import ResultStore, StoredUnit
from .cluster import (
    INSTALL_HINT,
    OBJECT_STORE_BYTES,
    Layout,
    check_cluster,
    local_resources,
    plan_layout,
    ray_installed,
)
from .driver import Driver
from .pools import InProcessPool, RayPool
from .progress import Progress, WorkerState
from .tasks import EXAMPLES_SHARD, Load, RenderTask, Request, Task, TaskResult, shards

OnUnits = Callable[[list[StoredUnit]], None]


class Atlas:
    """See the module docstring. ``loaded``/``kind``: the driver's model, which the
    in-process worker (``cluster="none"``, or Ray not installed) uses instead of loading
    another. ``folder``: where progress.json goes. ``on_change(progress)``: after every
    change; ``tick()``: about every second; ``log``/``warn``: messages for the user."""

    def __init__(self, request: Request, load: Load, *, cluster: str = "local",
                 workers: int | None = None, loaded: LoadedModel | None = None,
                 kind: InputKind | None = None, mirror: ResultStore | None = None,
                 folder: str | Path | None = None,
                 on_change: Callable[[Progress], None] | None = None,
                 tick: Callable[[], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 warn: Callable[[str], None] | None = None, quiet: bool = False):
        check_cluster(cluster, workers)
        self.request, self.load = request, load
        self.cluster, self.workers = cluster, workers
        self.loaded, self.kind, self.mirror = loaded, kind, mirror
        self.log, self.warn = log or (lambda _: None), warn or (lambda _: None)
        self.tick, self.quiet = tick, quiet
        resumed = len(request.labels) - len(request.todo)
        self.progress = Progress(len(request.labels), resumed, 0, folder, on_change)
        self.remote = ResultStore(request.store, request.settings, kind) \
            if mirror is not None else None
        self.driver: Driver | None = None
        self.layout: Layout | None = None

    # -- workers --------------------------------------------------------------------------

    def _start(self) -> Driver:
        if self.driver is None:
            pool = self._pool()
            self.progress.workers = [WorkerState(i) for i in range(pool.workers)]
            self.driver = Driver(pool, self.progress, self.request.key, self._result,
                                 self.tick, self.warn)
        return self.driver

    def _pool(self):
        if self.cluster == "none" or (self.cluster == "local" and not ray_installed()):
            if self.cluster == "local":
                self.log(f"note: Ray is not installed, so the atlas renders in this process; "
                         f"for several workers or a cluster: {INSTALL_HINT}")
            if self.loaded is None or self.kind is None:
                self.loaded, self.kind = self.load()
            return InProcessPool(self.request, self.loaded, self.kind)
        import ray

        device = str(self.request.arguments.get("device") or "auto")
        owns = not ray.is_initialized()
        settings = {"log_to_driver": not self.quiet, "logging_level": logging.WARNING}
        if self.cluster == "local" and owns:
            cores, gpus = local_resources(device)
            self.layout = plan_layout(cores, gpus, device, self.workers)
            context = ray.init(address="local", num_gpus=gpus,
                               num_cpus=max(cores, self.layout.workers * self.layout.cpus),
                               object_store_memory=OBJECT_STORE_BYTES, **settings)
        else:
            context = self._join(ray, settings) if owns else None
            try:
                resources = ray.cluster_resources()
                node_cpus = max((n["Resources"].get("CPU", 0) for n in ray.nodes()
                                 if n["Alive"]), default=0)
                self.layout = plan_layout(resources.get("CPU", 1), resources.get("GPU", 0),
                                          device, self.workers, node_cpus)
            except BaseException:
                if owns:
                    ray.shutdown()
                raise
        where = "a local Ray instance" if self.cluster == "local" else f"Ray at {self.cluster}"
        dashboard = getattr(context, "dashboard_url", None)
        self.log(f"atlas: {self.layout.describe()} on {where}"
                 + (f" (dashboard: http://{dashboard})" if dashboard else ""))
        return RayPool(self.request, self.load, self.layout,
                       on_close=ray.shutdown if owns else None)

    def _join(self, ray, settings: dict):
        if self.cluster != "auto":  # Ray waits minutes for an address where nothing answers
            host, port = self.cluster.removeprefix("ray://").rsplit(":", 1)
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
            except OSError as error:
                raise FeatscopeError(f"nothing answers at --cluster {self.cluster} "
                                     f"({error.strerror or error}); start Ray there with "
                                     "`ray start --head`, or use --cluster local") from None
        try:
            return ray.init(address=self.cluster, **settings)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise FeatscopeError(f"cannot join the Ray cluster at {self.cluster!r} ({first}); "
                                 "start one with `ray start --head`, or use --cluster local"
                                 ) from None

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close(interrupted=kind is KeyboardInterrupt, failed=error is not None)

    def close(self, interrupted: bool = False, failed: bool = False) -> None:
        """Stop the workers; progress.json says how the run ended."""
        if self.driver is not None:
            self.driver.pool.close()
            self.driver = None
        for worker in self.progress.workers:
            worker.enter("lost" if worker.state == "lost" else "stopped")
        state = "interrupted" if interrupted else "failed" if failed else "finished"
        self.progress.set_state(state)

    # -- the two phases -------------------------------------------------------------------

    def examples(self, folder: str | Path, shard: int | None = None) -> Examples:
        """The dataset examples of the request's targets under ``folder``: one task per
        ``shard`` images (default ``EXAMPLES_SHARD``), their top-k lists merged in the
        folder's order."""
        tasks = shards([str(p) for p in find_images(folder)], shard or EXAMPLES_SHARD)
        parts: dict[int, Examples] = {}
        self._on_examples = lambda task, result: parts.__setitem__(task.shard, result.examples)
        self.progress.shards = len(tasks)
        driver = self._start()
        self.progress.set_state("running", "dataset examples")
        driver.run(tasks)
        return merge_examples([parts[t.shard] for t in tasks], self.request.top_k, folder)

    def render(self, on_units: OnUnits) -> None:
        """Render the request's missing units; ``on_units`` gets each finished batch's."""
        if not self.request.todo:
            return
        self._on_units = on_units
        driver = self._start()
        self.progress.set_state("running", "rendering")
        batches = driver.pool.batches(driver.first_up())
        driver.run([RenderTask(batch) for batch in batches])

    def _result(self, task: Task, result: TaskResult) -> None:
        if not isinstance(task, RenderTask):
            self._on_examples(task, result)
            return
        units = result.units
        if self.mirror is not None:  # bring them from the workers' URL into the local store
            units = [self.mirror.copy_from(self.remote, u.label) or u if u.error is None else u
                     for u in units]
        self._on_units(units)


def adopt(remote: ResultStore, local: ResultStore, labels: Sequence[str]) -> list[StoredUnit]:
    """Units of ``labels`` that a store at a URL holds and the local store does not yet:
    copied into the local store (e.g. after a driver stopped before it copied them)."""
    return [unit for label in labels if (unit := local.copy_from(remote, label)) is not None]
