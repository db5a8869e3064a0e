"""The workers of a run behind one interface: in this process, or Ray actors.

A pool starts its workers, hands a task to a given worker (``submit``), and reports what
happened since (``wait``) as ``Outcome``s: a worker is up (``up``), a task is done
(``done``), a task raised (``failed``), a worker died with its task (``lost``; Ray restarts
the actor, and ``up`` follows when it has loaded the model again; ``restarting`` while it
cannot be reached yet), or a worker is gone for good (``gone``). What to do about each is
the driver's business (``driver``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import FeatscopeError
from ..inputs.base import InputKind
from ..models import LoadedModel
from ..rendering.plan import Batch
from .cluster import ACTOR_RESTARTS, TASK_RETRIES, Layout
from .tasks import Load, Request, Task, TaskResult
from .worker import AtlasWorker

PING_AGAIN = 1.0  # seconds before asking again after a worker that was briefly unreachable


@dataclass
class Outcome:
    kind: str  # "up", "done", "failed", "lost", "restarting" or "gone"
    worker: int
    task: Task | None = None
    result: TaskResult | None = None
    info: dict | None = None  # up: the worker's describe()
    error: BaseException | None = None  # failed: what the task raised
    why: str | None = None  # lost, gone: what happened to the worker


def reason(error: BaseException) -> str:
    """One line from a worker's error: a FeatscopeError's message where there is one."""
    text = str(error)
    for line in text.splitlines():
        if "FeatscopeError: " in line:
            return line.split("FeatscopeError: ", 1)[1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class InProcessPool:
    """One worker in the driver's process: a task runs when it is submitted."""

    workers = 1

    def __init__(self, request: Request, loaded: LoadedModel, kind: InputKind):
        self.worker = AtlasWorker(request, loaded=loaded, kind=kind)
        self.outcomes: list[Outcome] = []

    def start(self) -> None:
        self.outcomes.append(Outcome("up", 0, info=self.worker.describe()))

    def batches(self, worker: int) -> list[Batch]:
        return self.worker.batches()

    def submit(self, worker: int, task: Task) -> None:
        try:
            self.outcomes.append(Outcome("done", worker, task, self.worker.run(task)))
        except FeatscopeError:
            raise
        except Exception as error:  # reported like a worker's: the driver retries, then stops
            self.outcomes.append(Outcome("failed", worker, task, error=error))

    def wait(self, timeout: float) -> list[Outcome]:
        outcomes, self.outcomes = self.outcomes, []
        return outcomes

    def close(self) -> None:
        pass


class RayPool:
    """Ray actors (``AtlasWorker``), one task at a time each, restarted by Ray when they die
    (``cluster.ACTOR_RESTARTS``); Ray never retries a task (``cluster.TASK_RETRIES``)."""

    def __init__(self, request: Request, load: Load, layout: Layout,
                 on_close: Callable[[], None] | None = None):
        import ray
        from ray import exceptions

        self.ray = ray
        # A worker died with its task: the actor (or its node, or its process) is gone.
        self.faults = (exceptions.RayActorError, exceptions.WorkerCrashedError,
                       exceptions.NodeDiedError, exceptions.OutOfMemoryError,
                       exceptions.ObjectLostError, exceptions.LocalRayletDiedError)
        self.unavailable = exceptions.ActorUnavailableError
        self.task_error = exceptions.RayTaskError
        actor = ray.remote(AtlasWorker).options(
            num_cpus=layout.cpus, num_gpus=layout.gpus, max_restarts=ACTOR_RESTARTS,
            max_task_retries=TASK_RETRIES)
        self.actors = [actor.remote(request, load, layout.cpus) for _ in range(layout.workers)]
        self.workers = layout.workers
        self.pending: dict[object, tuple[int, Task | None]] = {}  # task refs; pings: None
        self.later: dict[int, float] = {}  # worker -> when to ping it again
        self.on_close = on_close

    def start(self) -> None:
        for index in range(self.workers):
            self._ping(index)

    def _ping(self, index: int) -> None:
        self.pending[self.actors[index].describe.remote()] = (index, None)

    def batches(self, worker: int) -> list[Batch]:
        return self.ray.get(self.actors[worker].batches.remote())

    def submit(self, worker: int, task: Task) -> None:
        self.pending[self.actors[worker].run.remote(task)] = (worker, task)

    def wait(self, timeout: float) -> list[Outcome]:
        now = time.monotonic()
        for index, when in list(self.later.items()):
            if when <= now:
                del self.later[index]
                self._ping(index)
        if not self.pending:
            time.sleep(min(timeout, PING_AGAIN))
            return []
        refs = list(self.pending)
        ready, rest = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return [self._outcome(ref, *self.pending.pop(ref)) for ref in ready]

    def _outcome(self, ref: object, index: int, task: Task | None) -> Outcome:
        try:
            value = self.ray.get(ref)
        except self.unavailable as error:  # briefly unreachable (restarting, network)
            if task is None:
                self.later[index] = time.monotonic() + PING_AGAIN
                return Outcome("restarting", index, why=reason(error))
            self._ping(index)
            return Outcome("lost", index, task, why=reason(error))
        except self.faults as error:
            if task is None:  # it did not come back: no restarts left, or it cannot start
                return Outcome("gone", index, why=reason(error))
            self._ping(index)  # answers once Ray has restarted it (or says it is gone)
            return Outcome("lost", index, task, why=reason(error))
        except self.task_error as error:  # the task itself raised
            cause = getattr(error, "cause", None)
            return Outcome("failed", index, task, error=cause if cause is not None else error)
        if task is None:
            return Outcome("up", index, info=value)
        return Outcome("done", index, task, value)

    def close(self) -> None:
        """Stop every actor now (a task in flight is abandoned; its units that were already
        stored are whole), then let go of Ray if this run started it."""
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone, or Ray itself is shutting down
                pass
        self.pending.clear()
        if self.on_close is not None:
            self.on_close()
