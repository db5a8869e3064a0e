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

The root may also be an fsspec URL (``s3://bucket/atlas``; ``location``): workers on other
machines then write there, and ``copy_from`` brings their units into a local store. A store
opened with a ``journal`` name also writes ``cache/KEY/puts/STEM.NAME.ID.json`` just before
each record, saying whether a record of that unit was there already, so that how often each
unit was written, and whether one was ever stored twice, can be counted (``puts``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from ..files.writing import file_stems, json_bytes
from ..inputs.base import InputKind
from ..rendering.results import UnitResult
from .location import Location

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
    metrics: dict = field(default_factory=dict)  # measured where it was rendered (robustness)

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
        data = path.read_bytes()
    except OSError:
        return False
    return readable_data(path.name, data)


def readable_data(name: str, data: bytes) -> bool:
    """Whether the bytes of the result file ``name`` parse as its suffix says."""
    suffix = Path(name).suffix
    try:
        if suffix == ".png":
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        elif suffix == ".npy":
            np.load(io.BytesIO(data), allow_pickle=False)
        elif suffix == ".json":
            json.loads(data)
        else:
            return len(data) > 0
    except (OSError, ValueError, SyntaxError):  # PIL reports bad PNG data as SyntaxError too
        return False
    return True


class ResultStore:
    """The units of one set of ``settings`` under the output folder ``root`` (a local folder,
    or an fsspec URL, see the module docstring)."""

    def __init__(self, root: str | Path, settings: dict, kind: InputKind,
                 journal: str | None = None):
        self.location = Location(root)
        self.root: Path | str = root if self.location.url else Path(root)
        self.settings = settings
        self.key = settings_key(settings)
        self.prefix = f"cache/{self.key}"  # the units' folder, relative to the root
        self.folder: Path | str = (f"{str(root).rstrip('/')}/{self.prefix}" if self.location.url
                                   else self.root / "cache" / self.key)
        self.kind = kind
        self.journal = journal

    def stem(self, label: str) -> str:
        # The same label always maps to the same file, whatever else is rendered with it.
        return f"{file_stems([label])[0]}-{hashlib.sha256(label.encode()).hexdigest()[:6]}"

    def relative(self, path: str | Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def _record(self, label: str) -> str:
        return f"{self.prefix}/{self.stem(label)}{RECORD_SUFFIX}"

    def get(self, label: str) -> StoredUnit | None:
        """The stored result of ``label``, or None when it is missing, failed or damaged."""
        try:
            unit = StoredUnit.from_json(json.loads(self.location.read_bytes(self._record(label))))
        except (OSError, ValueError, TypeError):  # missing, partial or from another version
            return None
        if unit.label != label or unit.error is not None or not unit.files:
            return None
        if not all(self._readable(p) for p in unit.files.values()):
            return None
        return unit

    def _readable(self, relative: str) -> bool:
        if not self.location.url:
            return readable(self.root / relative)
        try:
            return readable_data(relative, self.location.read_bytes(relative))
        except OSError:
            return False

    def put(self, result: UnitResult) -> StoredUnit:
        """Write a unit's files, then its record (last, so the unit counts only when whole)."""
        files = {}
        if result.image is not None:
            files = self._save_files(result)
        unit = StoredUnit(
            label=result.label, target=result.target, copy=result.copy, seed=result.seed,
            preset=result.preset, key=self.key, files=files,
            objective_initial=_finite(result.initial), objective=_finite(result.final),
            objective_transformed=_finite(result.transformed),
            history=[float(v) for v in result.history.tolist()], seconds=result.seconds,
            zero_gradient=result.zero_gradient, never_activated=result.never_activated,
            batch=list(result.batch), nan_retries=result.nan_retries, error=result.error,
            extra=dict(result.extra), metrics=dict(result.metrics))
        if self.journal is not None:
            # Before the record, so that a writer stopped between the two leaves an entry for a
            # unit it did not store (written again later) rather than a stored unit with none.
            entry = {"label": unit.label, "worker": self.journal, "time": time.time(),
                     "replaced": self.location.exists(self._record(result.label))}
            name = f"{self.stem(unit.label)}.{self.journal}.{uuid.uuid4().hex[:8]}.json"
            self.location.write_bytes(f"{self.prefix}/puts/{name}", json_bytes(entry))
        self.location.write_bytes(self._record(result.label), json_bytes(asdict(unit)))
        return unit

    def _save_files(self, result: UnitResult) -> dict[str, str]:
        """The input kind writes the unit's files (into a scratch folder first for a URL)."""
        stem = self.stem(result.label)
        if not self.location.url:
            self.folder.mkdir(parents=True, exist_ok=True)
            written = self.kind.save(result.image, self.folder, stem,
                                     transparency=result.transparency)
            return {what: self.relative(path) for what, path in written.items()}
        with tempfile.TemporaryDirectory(prefix="featscope-unit-") as scratch:
            written = self.kind.save(result.image, Path(scratch), stem,
                                     transparency=result.transparency)
            files = {}
            for what, path in written.items():
                relative = f"{self.prefix}/{Path(path).name}"
                self.location.write_bytes(relative, Path(path).read_bytes())
                files[what] = relative
        return files

    def copy_from(self, other: ResultStore, label: str) -> StoredUnit | None:
        """Bring ``label``'s unit from ``other`` (a store of the same settings, e.g. at the
        workers' URL) into this one: its files, then its record. None when ``other`` does not
        hold it whole."""
        if other.key != self.key:
            raise ValueError(f"stores of different settings ({other.key}, {self.key})")
        unit = other.get(label)
        if unit is None:
            return None
        for relative in unit.files.values():
            self.location.write_bytes(relative, other.location.read_bytes(relative))
        self.location.write_bytes(self._record(label), json_bytes(asdict(unit)))
        return unit

    def puts(self, labels: Iterable[str] | None = None, *,
             replacing: bool = False) -> Counter[str]:
        """How many times journaling stores (see the module docstring) began to write each
        unit's record, for ``labels`` (default: every unit in the journal). ``replacing``: only
        the writes over a record already there, that is, units stored more than once.

        Without faults each stored unit counts 1. A writer killed between its journal entry
        and its record (a lost worker, Ctrl-C) adds an entry for a unit it did not store;
        that unit, written again later, counts 2 with no replacing write."""
        wanted = None if labels is None else set(labels)
        counts: Counter[str] = Counter()
        for name in self.location.names(f"{self.prefix}/puts"):
            try:
                entry = json.loads(self.location.read_bytes(f"{self.prefix}/puts/{name}"))
                label, replaced = entry["label"], bool(entry.get("replaced"))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (wanted is None or label in wanted) and (replaced or not replacing):
                counts[label] += 1
        return counts
