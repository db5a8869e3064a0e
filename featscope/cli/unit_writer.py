"""Writing rendered units as they finish, and finding the ones a previous run finished.

``UnitWriter.write`` is called after each finished chunk: it writes the chunk's files (by
input kind) and rewrites ``summary.json`` with every unit finished so far, so that Ctrl-C or
a crash keeps all finished units and ``--resume`` can skip them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .. import inputs
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..objectives import Objective
from ..outputs import file_stems, save_png, write_json
from ..render import RenderResult
from ..transparency import with_alpha
from .common import console


def _readable(path: Path) -> bool:
    """Whether a result file exists and parses (a crash or full disk can leave it broken)."""
    try:
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        else:
            return path.stat().st_size > 0
    except (OSError, ValueError, SyntaxError):  # PIL reports bad PNG data as SyntaxError too
        return False
    return True


def finished_rows(folder: Path, targets: Sequence[str]) -> dict[str, dict]:
    """Rows of a previous run's ``summary.json`` whose files are all intact, by target."""
    path = folder / "summary.json"
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        console.print(f"[yellow]warning[/]: {path} is unreadable; rendering every target again")
        return {}
    done = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("target") not in targets:
            continue
        files = [Path(p) for p in (row.get("files") or {}).values()]
        if files and all(_readable(p) for p in files):
            done[row["target"]] = row
        else:
            console.print(f"[yellow]warning[/]: {row.get('target')}: its result files are "
                          "missing or corrupt; rendering it again")
    return done


class UnitWriter:
    """Writes each finished unit's files and keeps ``summary.json`` current."""

    def __init__(self, folder: Path, loaded: LoadedModel, kind: object | None,
                 targets: Sequence[str], objectives: Sequence[Objective],
                 done: dict[str, dict], header: dict):
        self.folder, self.loaded, self.kind, self.header = folder, loaded, kind, header
        self.targets = list(targets)
        self.stems = dict(zip(self.targets, file_stems(self.targets)))
        self.rows = dict(done)
        self.pending = [(t, o) for t, o in zip(self.targets, objectives) if t not in done]
        self.seconds = 0.0

    def write(self, result: RenderResult) -> None:
        """Save one finished chunk (its units are the next ``len(result.targets)`` pending)."""
        chunk, self.pending = self.pending[:len(result.targets)], self.pending[len(result.targets):]
        hard = self._hard_scores(result, [o for _, o in chunk])
        retries = result.settings.get("nan_retries", {})
        per_unit = result.seconds / len(chunk)
        alphas = (with_alpha(result.images, result.transparency)
                  if result.transparency is not None else None)
        for i, (target, objective) in enumerate(chunk):
            try:
                files = self._save(result.images[i], self.stems[target])
                if alphas is not None:
                    path = self.folder / f"{self.stems[target]}-alpha.png"
                    files["transparency"] = str(save_png(alphas[i], path))
            except OSError as error:
                raise FeatscopeError(
                    f"cannot write the result of {target} to {str(self.folder)!r}: "
                    f"{error.strerror or error}. The {len(self.rows)} unit(s) finished before "
                    "it are saved; free some space and rerun with --resume") from None
            row = {"target": target, "files": files, "image": files.get("image"),
                   "objective_initial": float(result.initial[i]),
                   "objective": float(result.final[i]), "seconds": per_unit,
                   "zero_gradient": result.zero_gradient[i]}
            if "transparency" in files:
                row["transparency"] = files["transparency"]
            if result.never_activated:
                row["never_activated"] = result.never_activated[i]
            if objective.name in retries:
                row["nan_retries_lr"] = retries[objective.name]
            if hard is not None:
                row["objective_hard_tokens"] = float(hard[i])
                row["soft_hard_gap"] = row["objective"] - row["objective_hard_tokens"]
            self.rows[target] = row
        self.seconds += result.seconds
        self.header = {**self.header, "device": result.device,
                       "settings": {**result.settings, **self.header.get("settings", {})}}
        self.flush()

    def _hard_scores(self, result: RenderResult, objectives: list[Objective]):
        if not isinstance(self.kind, inputs.Tokens):
            return None
        ids = self.kind.nearest(result.images)
        return inputs.hard_token_scores(self.loaded.module, objectives, ids)

    def _save(self, x, stem: str) -> dict[str, str]:
        if self.kind is None:  # an image (C, H, W) in [0, 1]
            return {"image": str(save_png(x, self.folder / f"{stem}.png"))}
        return self.kind.save(x, self.folder, stem)

    def flush(self) -> None:
        rows = [self.rows[t] for t in self.targets if t in self.rows]
        settings = {**self.header.get("settings", {}), "total_seconds": self.seconds}
        write_json({**self.header, "settings": settings, "results": rows},
                   self.folder / "summary.json")

    @property
    def finished(self) -> int:
        return len(self.rows)
