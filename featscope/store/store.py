"""Resumable rendering: each unit's result is cached on disk, keyed by the settings.

The cache lives in ``OUT/cache/KEY/`` where KEY is a hash of everything that decides a
result (model, weights, recipe, pooling, seed). Each unit gets ``STEM.png`` and then
``STEM.json``; both are written atomically and the JSON is written last, so a unit counts as
done only when both are complete. Units are rendered in batches and each batch is saved as
soon as it finishes: an interrupted run loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .dataset import Examples, find_images
from .models import LoadedModel
from .objectives import Objective
from .outputs import file_stems, save_png, write_json
from .hardening import render_units
from .render import AUTO, RenderResult, default_batch_size, recipe, resolve_device


@dataclass
class UnitResult:
    """One rendered target, as stored in the cache."""

    target: str
    image: str  # path of the PNG
    objective_initial: float
    objective: float
    history: list[float]  # objective at each step (with random transforms)
    zero_gradient: bool
    seconds: float
    batch: list[str] = field(default_factory=list)  # the targets rendered together with it
    settings: dict = field(default_factory=dict)


def settings_key(settings: dict) -> str:
    """A short, stable hash of JSON-able settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class RenderCache:
    """Results of single targets under one set of settings, in ``root/cache/KEY/``."""

    def __init__(self, root: str | Path, settings: dict):
        self.settings = settings
        self.key = settings_key(settings)
        self.folder = Path(root) / "cache" / self.key

    def _stem(self, target: str) -> str:
        # The same target always maps to the same file, whatever else is rendered with it.
        safe = file_stems([target])[0]
        return f"{safe}-{hashlib.sha256(target.encode()).hexdigest()[:6]}"

    def get(self, target: str) -> UnitResult | None:
        path = self.folder / f"{self._stem(target)}.json"
        try:
            result = UnitResult(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # missing, partial or from another version
            return None
        return result if result.target == target and Path(result.image).is_file() else None

    def put(self, result: RenderResult, index: int) -> UnitResult:
        """Store element ``index`` of a batch result (an image (C, H, W) per target)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem(result.targets[index])
        image = save_png(result.images[index], self.folder / f"{stem}.png")
        unit = UnitResult(
            target=result.targets[index], image=str(image),
            objective_initial=float(result.initial[index]),
            objective=float(result.final[index]),
            history=[float(v) for v in result.history[:, index]],
            zero_gradient=bool(result.zero_gradient[index]),
            seconds=result.seconds / len(result.targets),
            batch=list(result.targets), settings=result.settings)
        write_json(asdict(unit), self.folder / f"{stem}.json")
        return unit


@dataclass
class Rendered:
    units: list[UnitResult]  # in the order of the targets asked for
    resumed: int  # how many came from the cache
    seconds: float  # time spent rendering in this run


def render_cached(loaded: LoadedModel, objectives: Sequence[Objective], cache: RenderCache, *,
                  batch_size: int | None = None, progress: bool = True,
                  render_options: dict | None = None,
                  log: Callable[[str], None] | None = None) -> Rendered:
    """Render every objective that the cache lacks, at most ``batch_size`` per forward pass
    (default: ``default_batch_size``, the fastest for the device).

    ``render_options`` are passed to ``render`` (preset, steps, size, seed, device, ...).
    Each batch is stored as soon as it is done. Objective names are the cache's targets.
    """
    options = dict(render_options or {})
    targets = [o.name for o in objectives]
    done = {t: cache.get(t) for t in dict.fromkeys(targets)}
    missing = [o for o in dict((o.name, o) for o in objectives).values() if done[o.name] is None]
    resumed = len(done) - len(missing)
    if log and resumed:
        log(f"resumed {resumed} of {len(done)} units from {cache.folder}; "
            f"rendering {len(missing)}")
    chosen = recipe(options.get("preset", AUTO), steps=options.get("steps"))
    steps = chosen.steps
    batch_size = batch_size or default_batch_size(loaded, resolve_device(options.get("device")),
                                                  chosen.crops)
    seconds = 0.0
    # Counted in unit-steps, so that the time left moves during a long batch.
    with tqdm(total=len(missing) * steps, disable=not progress or not missing, unit="step",
              desc=f"rendering {len(missing)} units", dynamic_ncols=True) as bar:
        finished = 0
        for batch in batches(missing, batch_size):
            # render_units: NaN/Inf retries and out-of-memory splitting, as in `render`.
            result = render_units(loaded, batch, **options,
                                  on_step=lambda step, values: bar.update(len(values)))
            seconds += result.seconds
            for i in range(len(batch)):
                done[batch[i].name] = cache.put(result, i)
            finished += len(batch)
            bar.set_postfix_str(f"{finished}/{len(missing)} units saved")
    return Rendered([done[t] for t in targets], resumed, seconds)


def batches(objectives: Sequence[Objective], size: int) -> list[list[Objective]]:
    """Runs of consecutive objectives that read the same layers, cut into chunks of ``size``.

    A batch then runs the model only as deep as its own layers need, instead of every unit
    of a low layer paying for the forward pass through the whole network.
    """
    chunks: list[list[Objective]] = []
    for objective in objectives:
        last = chunks[-1] if chunks else None
        if last and last[0].layers == objective.layers and len(last) < size:
            last.append(objective)
        else:
            chunks.append([objective])
    return chunks


def cached_examples(root: str | Path, settings: dict, folder: str | Path,
                    find: Callable[[], Examples]) -> tuple[Examples, bool]:
    """Dataset examples from ``root/cache/examples-KEY.json``, or ``find()`` them and store them.

    KEY covers ``settings`` and every image file's path, size and modification time, so that
    a changed folder is scanned again. Returns the examples and whether they came from disk.
    """
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in find_images(folder)]
    path = Path(root) / "cache" / f"examples-{settings_key({**settings, 'files': files})}.json"
    try:
        return Examples.from_json(json.loads(path.read_text())), True
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or cut short
        pass
    found = find()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(found.to_json(), path)
    return found, False
