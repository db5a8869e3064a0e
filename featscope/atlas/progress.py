"""An atlas run's progress: units done of the total, units per minute, time left, and the
state of each worker; kept current by the driver and written to ``OUT/progress.json``.

``progress.json`` (rewritten whole at most every ``WRITE_EVERY`` seconds and at every change
of the run's state)::

    {"state": "running", "phase": "rendering", "total": 1024, "done": 412, "resumed": 100,
     "rendered": 312, "failed": 0, "units_per_minute": 35.2, "seconds_left": 1063,
     "elapsed_seconds": 532.1, "requeued": 1, "workers_lost": 1, "task_overhead_ms": 4.1,
     "examples": {"shards": 4, "done": 4},
     "workers": [{"index": 0, "name": "node1-4242", "host": "node1", "pid": 4242,
                  "device": "cuda", "threads": 4, "state": "busy",
                  "task": "_blocks.3 (32 units)", "since": 1732700000.0, "units": 160}],
     "updated": "2026-11-27T12:03:15"}

Worker states: ``starting`` (loading the model), ``idle``, ``busy``, ``restarting`` (it died
and Ray restarts it; its batch went back to the queue), ``lost`` (gone for good).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from ..files.writing import write_json

PROGRESS = "progress.json"
WRITE_EVERY = 1.0  # seconds between rewrites of progress.json while nothing else changes


@dataclass
class WorkerState:
    index: int
    name: str = ""
    host: str = ""
    pid: int | None = None
    device: str = ""
    threads: int | None = None
    state: str = "starting"
    task: str | None = None  # what it is doing
    since: float = field(default_factory=time.time)  # when it entered its state
    units: int = 0  # units it stored in this run

    def enter(self, state: str, task: str | None = None) -> None:
        self.state, self.task, self.since = state, task, time.time()


class Progress:
    """The run's counts and workers (see the module docstring); ``on_change`` is called
    after every change (the terminal display redraws there)."""

    def __init__(self, total: int, resumed: int, workers: int, folder: Path | None = None,
                 on_change: Callable[[Progress], None] | None = None):
        self.total, self.resumed = total, resumed
        self.rendered = self.failed = self.requeued = self.workers_lost = 0
        self.workers = [WorkerState(i) for i in range(workers)]
        self.state, self.phase = "starting", "starting"
        self.shards = self.shards_done = 0
        self.path = None if folder is None else Path(folder) / PROGRESS
        self.on_change = on_change
        self.began = time.time()
        self.rendering_since: float | None = None  # the first render task's start
        self.last_unit: float | None = None  # when the last rendered unit came back
        self.overheads: list[float] = []  # seconds per task beyond the worker's own time
        self._written = 0.0

    @property
    def done(self) -> int:
        return self.resumed + self.rendered + self.failed

    def add(self, rendered: int, failed: int) -> None:
        """Units that came back from a task (rendered, or failed)."""
        self.rendered += rendered
        self.failed += failed
        self.last_unit = time.time()

    def units_per_minute(self) -> float | None:
        """Units rendered per minute of rendering (until now, or until the last unit of a
        run that has ended)."""
        if self.rendering_since is None or not self.rendered:
            return None
        end = time.time() if self.state == "running" else (self.last_unit or time.time())
        minutes = (end - self.rendering_since) / 60
        return self.rendered / minutes if minutes > 0 else None

    def seconds_left(self) -> float | None:
        rate = self.units_per_minute()
        return None if not rate else (self.total - self.done) / rate * 60

    def snapshot(self) -> dict:
        rate, left = self.units_per_minute(), self.seconds_left()
        overhead = statistics.median(self.overheads) * 1000 if self.overheads else None
        return {"state": self.state, "phase": self.phase, "total": self.total,
                "done": self.done, "resumed": self.resumed, "rendered": self.rendered,
                "failed": self.failed,
                "units_per_minute": None if rate is None else round(rate, 2),
                "seconds_left": None if left is None else round(left),
                "elapsed_seconds": round(time.time() - self.began, 1),
                "requeued": self.requeued, "workers_lost": self.workers_lost,
                "task_overhead_ms": None if overhead is None else round(overhead, 2),
                "examples": {"shards": self.shards, "done": self.shards_done},
                "workers": [asdict(w) for w in self.workers],
                "updated": datetime.now().isoformat(timespec="seconds")}

    def summary(self) -> str:
        """One line: units done of the total, the rate, the time left, the workers."""
        rate, left = self.units_per_minute(), self.seconds_left()
        parts = [f"{self.done} of {self.total} units"]
        if rate:
            parts.append(f"{rate:.1f} units/min")
        if left is not None and self.done < self.total:
            parts.append(f"about {duration(left)} left")
        busy = sum(w.state == "busy" for w in self.workers)
        alive = sum(w.state != "lost" for w in self.workers)
        parts.append(f"{busy} of {alive} worker(s) busy")
        if self.requeued:
            parts.append(f"{self.requeued} batch(es) re-queued")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " · ".join(parts)

    def changed(self, force: bool = False) -> None:
        """Rewrite progress.json (at most every WRITE_EVERY s unless ``force``), redraw."""
        now = time.time()
        if self.path is not None and (force or now - self._written >= WRITE_EVERY):
            write_json(self.snapshot(), self.path)
            self._written = now
        if self.on_change is not None:
            self.on_change(self)

    def set_state(self, state: str, phase: str | None = None) -> None:
        self.state = state
        self.phase = phase or self.phase
        self.changed(force=True)


def duration(seconds: float) -> str:
    """12 s, 7 min, 3.4 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
