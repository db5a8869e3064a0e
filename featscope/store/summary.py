"""``summary.json``: what an output folder holds, one row per unit, in one schema for every
command (``docs/summary.schema.json``).

A rerun into the same folder merges: the rows of this run replace the rows with the same
labels (the files a label points to are this run's), and rows of other labels stay, each
with the settings it was rendered under (``runs``, by settings key). Paths are relative to
the folder, so a copied folder keeps working; ``resolve`` turns them into paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..files.writing import write_json
from .store import StoredUnit

SCHEMA_VERSION = 1
SUMMARY = "summary.json"


def row_of(unit: StoredUnit, files: dict[str, str] | None = None,
           reproduce: str | None = None) -> dict:
    """The summary row of a stored unit; ``files`` replaces its file paths (e.g. the copies
    a command puts at the top of the folder)."""
    files = dict(unit.files if files is None else files)
    row = {"target": unit.label, "name": unit.target, "copy": unit.copy, "files": files,
           "image": files.get("image") or files.get("plot") or files.get("montage"),
           "objective_initial": unit.objective_initial, "objective": unit.objective,
           "objective_transformed": unit.objective_transformed,
           "history": unit.history, "seconds": unit.seconds,
           "zero_gradient": unit.zero_gradient, "never_activated": unit.never_activated,
           "nan_retries": unit.nan_retries, "error": unit.error, "recipe": unit.preset,
           "seed": unit.seed, "settings_key": unit.key, "batch": unit.batch,
           "reproduce": reproduce, **unit.extra}
    if "transparency" in files:
        row["transparency"] = files["transparency"]
    if unit.metrics:  # measured where it was rendered; evaluate and the gallery replace them
        row["metrics"] = dict(unit.metrics)
    return row


def resolve(folder: str | Path, path: str) -> Path:
    """A path from a summary row (relative to the summary's folder, or absolute)."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(folder) / candidate


def read_summary(folder: str | Path) -> dict:
    """The summary of ``folder`` as written (raises OSError / ValueError when unreadable)."""
    data = json.loads((Path(folder) / SUMMARY).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError("not a featscope summary (no results list)")
    return data


class Summary:
    """The folder's ``summary.json``, kept current as units finish."""

    def __init__(self, folder: str | Path, warn: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.rows: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.extra: dict = {}
        if (self.folder / SUMMARY).exists():
            try:
                earlier = read_summary(self.folder)
                self.rows = {r["target"]: r for r in earlier["results"]
                             if isinstance(r, dict) and isinstance(r.get("target"), str)}
                self.runs = dict(earlier.get("runs") or {})
            except (OSError, ValueError, KeyError, TypeError):
                if warn:
                    warn(f"{self.folder / SUMMARY} is unreadable; starting a new one")

    def write(self, header: dict, rows: Sequence[dict], runs: dict[str, dict]) -> Path:
        """Merge this run's ``rows`` (in this run's order, first) and write the file."""
        current = {r["target"]: r for r in rows}
        kept = {label: row for label, row in self.rows.items() if label not in current}
        self.rows = {**current, **kept}
        self.runs.update(runs)
        used = {r.get("settings_key") for r in self.rows.values()}
        runs_used = {k: v for k, v in self.runs.items() if k in used}
        failed = [label for label, row in self.rows.items() if row.get("error")]
        summary = {"schema": SCHEMA_VERSION, **header, "runs": runs_used, "failed": failed,
                   **self.extra, "results": list(self.rows.values())}
        return write_json(summary, self.folder / SUMMARY)
