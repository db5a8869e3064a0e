"""Writing a finished batch on a worker thread while the next batch renders.

A GPU renders a batch in seconds; encoding and writing its PNGs, records and the summary then
takes a noticeable share of the run if the next batch waits for it. ``Background`` runs each
batch's writes on one worker thread, in order, one batch at a time: ``submit`` first waits
for the batch before (so a failed write stops the run at the next batch, not later), and
leaving the ``with`` block waits for the last one, also on an error or Ctrl-C, so a batch
that finished rendering is written before the command ends. The store's own rule is
untouched: a unit's files are written before its record, so it counts only when whole.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class Background:
    """One worker thread for a run's writes (see the module docstring)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="featscope-writes")
        self._pending: Future | None = None

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the worker thread once the work before it is done (its error, if
        any, is raised here)."""
        self.wait()
        self._pending = self._pool.submit(work)

    def wait(self) -> None:
        """Wait for the work in flight; raise its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
