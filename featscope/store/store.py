"""The results store: each unit's result on disk, keyed by the settings that decide it.

Every command writes its units through one store under its output folder::

    OUT/cache/KEY/STEM.png ...          the unit's files, as its input kind writes them
    OUT/cache/KEY/STEM.result.json      its numbers and the list of its files, written last

KEY is a hash of everything that decides a unit's result (the model and its weights, the
recipes, pooling, seed, precision, input options; not the device, the batch size or the
output folder), so a rerun renders only the units missing *for those settings* and never
serves a result made with other settings. A unit counts as stored only when its record and
every file it lists are there and readable: a crash, Ctrl-C or a full disk leaves at most a
missing unit, never a wrong one. Paths in records are relative to the output folder, so a
copied folder keeps working.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from ..files.writing import file_stems, write_json
from ..inputs.base import InputKind
from ..rendering.results import UnitResult

RECORD_SUFFIX = ".result.json"


def settings_key(settings: dict) -> str:
    """A short, stable hash of JSON-able settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class StoredUnit:
    """One unit's result as stored: its numbers and its files (relative to the folder)."""

    label: str  # unique in the request that rendered it
    target: str  # the objective's name
    copy: int
    seed: int  # the unit's own seed
    preset: str  # the recipe it was rendered with
    key: str  # the settings it was rendered under
    files: dict[str, str] = field(default_factory=dict)  # what -> path relative to the folder
    objective_initial: float | None = None
    objective: float | None = None
    objective_transformed: float | None = None  # under the random transforms
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    zero_gradient: bool = False
    never_activated: bool = False
    batch: list[str] = field(default_factory=list)  # the units searched together with it
    nan_retries: list[float] | None = None  # learning rates tried after NaN/Inf
    error: str | None = None  # why it failed (then it has no files)
    extra: dict = field(default_factory=dict)  # numbers its input kind measured

    @property
    def image(self) -> str | None:
        """The main picture's path (relative), if the unit has one."""
        return self.files.get("image") or self.files.get("plot") or self.files.get("montage")

    @classmethod
    def from_json(cls, data: dict) -> StoredUnit:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def readable(path: Path) -> bool:
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


class ResultStore:
    """The units of one set of ``settings`` under the output folder ``root``."""

    def __init__(self, root: str | Path, settings: dict, kind: InputKind):
        self.root = Path(root)
        self.settings = settings
        self.key = settings_key(settings)
        self.folder = self.root / "cache" / self.key
        self.kind = kind

    def stem(self, label: str) -> str:
        # The same label always maps to the same file, whatever else is rendered with it.
        return f"{file_stems([label])[0]}-{hashlib.sha256(label.encode()).hexdigest()[:6]}"

    def relative(self, path: str | Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def get(self, label: str) -> StoredUnit | None:
        """The stored result of ``label``, or None when it is missing, failed or damaged."""
        path = self.folder / f"{self.stem(label)}{RECORD_SUFFIX}"
        try:
            unit = StoredUnit.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # missing, partial or from another version
            return None
        if unit.label != label or unit.error is not None or not unit.files:
            return None
        if not all(readable(self.root / p) for p in unit.files.values()):
            return None
        return unit

    def put(self, result: UnitResult) -> StoredUnit:
        """Write a unit's files, then its record (last, so the unit counts only when whole)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {}
        if result.image is not None:
            written = self.kind.save(result.image, self.folder, self.stem(result.label),
                                     transparency=result.transparency)
            files = {what: self.relative(path) for what, path in written.items()}
        unit = StoredUnit(
            label=result.label, target=result.target, copy=result.copy, seed=result.seed,
            preset=result.preset, key=self.key, files=files,
            objective_initial=_finite(result.initial), objective=_finite(result.final),
            objective_transformed=_finite(result.transformed),
            history=[float(v) for v in result.history.tolist()], seconds=result.seconds,
            zero_gradient=result.zero_gradient, never_activated=result.never_activated,
            batch=list(result.batch), nan_retries=result.nan_retries, error=result.error,
            extra=dict(result.extra))
        write_json(asdict(unit), self.folder / f"{self.stem(result.label)}{RECORD_SUFFIX}")
        return unit
