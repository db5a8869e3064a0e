"""The driver: hands tasks to idle workers, collects what they return, and decides what a
fault means.

- A worker that is idle gets the next task from the queue (workers pull work as they free
  up, so a fast worker does more of it).
- A worker that dies with its task (``lost``: its node or process is gone, or it ran out of
  memory) puts the task back at the head of the queue, for the next idle worker; Ray
  restarts the actor, which takes tasks again once it has loaded the model. Units the dead
  worker had stored are kept (the task, coming back, renders only the others), so nothing
  finished is lost or stored twice. After ``BATCH_ATTEMPTS`` lost workers a render task is
  given up: its units are reported failed (a rerun renders them), and the run goes on.
- A task that raises: a ``FeatscopeError`` (a user error, the same on every worker) stops
  the run at once; anything else is retried like a lost task, then stops the run.
- When no worker is left, the run stops with the reason.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from ..errors import FeatscopeError
from .cluster import BATCH_ATTEMPTS
from .pools import Outcome
from .progress import Progress
from .tasks import RenderTask, Task, TaskResult, failed_units

TICK = 1.0  # seconds the driver waits for news before it calls ``tick`` again
START_WARNING = 120.0  # seconds without any worker up before the run says so


class Driver:
    """Runs lists of tasks on a pool's workers (see the module docstring).

    ``on_result(task, result)`` gets each finished task (a given-up render task as its
    failed units); ``tick()`` is called about every ``TICK`` seconds; ``warn`` says what a
    user should know (a worker lost, none starting).
    """

    def __init__(self, pool, progress: Progress, key: str,
                 on_result: Callable[[Task, TaskResult], None],
                 tick: Callable[[], None] | None = None,
                 warn: Callable[[str], None] | None = None):
        self.pool, self.progress, self.key = pool, progress, key
        self.on_result, self.tick, self.warn = on_result, tick, warn or (lambda _: None)
        self.running: dict[int, tuple[Task, float]] = {}  # worker -> (task, submitted at)
        self.gone: list[str] = []
        self.started = time.monotonic()
        self.warned = False
        pool.start()

    @property
    def workers(self):
        return self.progress.workers

    def first_up(self) -> int:
        """Wait until a worker is up; its index."""
        while True:
            up = [w.index for w in self.workers if w.state == "idle"]
            if up:
                return up[0]
            self._collect(deque())

    def run(self, tasks: Sequence[Task]) -> None:
        """Every task done (or given up), whichever workers do them."""
        queue: deque[Task] = deque(tasks)
        while queue or self.running:
            for worker in self.workers:
                if queue and worker.state == "idle" and worker.index not in self.running:
                    task = queue.popleft()
                    self.running[worker.index] = (task, time.monotonic())
                    self.pool.submit(worker.index, task)
                    if self.progress.rendering_since is None and isinstance(task, RenderTask):
                        self.progress.rendering_since = time.time()
                    worker.enter("busy", task.describe())
                    self.progress.changed(force=True)
            self._collect(queue)

    def _collect(self, queue: deque[Task]) -> None:
        for outcome in self.pool.wait(TICK):
            self._handle(outcome, queue)
        if all(w.state == "lost" for w in self.workers):
            raise FeatscopeError(f"every worker died; the last: {self.gone[-1]}. The units "
                                 "finished so far are saved; run the same command again to "
                                 "go on")
        if not self.warned and time.monotonic() - self.started > START_WARNING and \
                not any(w.state in ("idle", "busy") for w in self.workers):
            self.warned = True
            self.warn(f"no worker has started after {START_WARNING:.0f} s: the cluster may "
                      "lack the CPUs or GPUs each worker asks for (see `ray status`)")
        if self.tick is not None:
            self.tick()

    def _handle(self, outcome: Outcome, queue: deque[Task]) -> None:
        worker = self.workers[outcome.worker]
        if outcome.kind == "up":
            info = outcome.info or {}
            worker.name, worker.host = info.get("name", ""), info.get("host", "")
            worker.pid, worker.device = info.get("pid"), info.get("device", "")
            worker.threads = info.get("threads")
            worker.enter("idle")
        elif outcome.kind == "done":
            task, submitted = self.running.pop(outcome.worker)
            self.progress.overheads.append(time.monotonic() - submitted - outcome.result.seconds)
            worker.enter("idle")
            self._finished(worker, task, outcome.result)
        elif outcome.kind == "lost":
            self.running.pop(outcome.worker, None)
            worker.enter("restarting")
            self.progress.workers_lost += 1
            self.warn(f"worker {outcome.worker} ({worker.name or 'starting'}) died with "
                      f"{outcome.task.describe()}: {outcome.why}; the task goes back to the "
                      "queue")
            self._again(outcome.task, queue, outcome.why)
        elif outcome.kind == "failed":
            self.running.pop(outcome.worker, None)
            worker.enter("idle")
            if isinstance(outcome.error, FeatscopeError):
                raise outcome.error
            self._again(outcome.task, queue, f"{type(outcome.error).__name__}: {outcome.error}",
                        lost=False)
        elif outcome.kind == "gone":
            worker.enter("lost")
            self.gone.append(outcome.why or "unknown")
            self.warn(f"worker {outcome.worker} is gone: {outcome.why}")
        self.progress.changed(force=outcome.kind != "done")

    def _again(self, task: Task, queue: deque[Task], why: str | None, lost: bool = True) -> None:
        """Back to the head of the queue, unless it has used up its attempts."""
        task.attempts += 1
        if task.attempts < BATCH_ATTEMPTS:
            queue.appendleft(task)
            self.progress.requeued += 1
            return
        if not lost or not isinstance(task, RenderTask):
            raise FeatscopeError(f"{task.describe()} failed {task.attempts} times; the last "
                                 f"time: {why}")
        error = (f"the worker rendering this batch died {task.attempts} times (the last time: "
                 f"{why}); out of memory? Try a smaller --batch-size")
        self._finished(None, task, TaskResult(failed_units(task, self.key, error)))

    def _finished(self, worker, task: Task, result: TaskResult) -> None:
        if isinstance(task, RenderTask):
            failed = sum(u.error is not None for u in result.units)
            self.progress.add(len(result.units) - failed, failed)
            if worker is not None:
                worker.units += len(result.stored)
        else:
            self.progress.shards_done += 1
        self.on_result(task, result)
