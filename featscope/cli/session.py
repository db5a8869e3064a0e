"""What every rendering command does the same way: a ``Job``.

A job checks its options, loads and adapts the model, and renders units through the one
results store of its output folder: units already stored under the same settings are reused
(``--fresh`` renders them again), the others are rendered by ``featscope.render`` in the
batching plan's batches, and each finished batch is stored and entered in ``summary.json``
at once, so Ctrl-C, a crash or a full disk loses at most the batch in flight. Commands then
add their own pictures (sheets, the gallery) and summary fields.

A command that renders elsewhere (``featscope atlas``: on Ray workers) gives ``render`` its
own renderer: it renders ``render_arguments()`` for the labels still missing, and hands the
units its workers stored to ``record``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from PIL import Image

from ..analysis.examples import Examples, cached_examples, top_examples
from ..engine.device import resolve_device
from ..engine.model import resolve_precision
from ..engine.probing import MODEL_OUTPUT, resolve_layer
from ..errors import FeatscopeError
from ..files.images import find_images, load_image, mode_for
from ..files.writing import copy_file, file_stems, prepare_dir
from ..objectives.base import Objective
from ..objectives.binding import bind_objectives
from ..objectives.features import Direction
from ..objectives.targets import parse_target
from ..params.spectrum import spectrum_from_folder
from ..rendering.api import render
from ..rendering.directions import read_direction, toward_image
from ..rendering.recipes import architecture_of, recipe, recipes_of
from ..rendering.results import RenderError, UnitResult
from ..store.background import Background
from ..store.store import ResultStore, StoredUnit, readable
from ..store.summary import Summary, row_of
from .app import UnitsFailed, log, warn
from .loading import Adapted, load_adapted
from .options import (
    OPTIONS,
    AccentOptions,
    DirectionOptions,
    ExamplesOptions,
    InputOptions,
    ModelOptions,
    OutputOptions,
    RenderOptions,
)

# Renders the labels ``todo`` of a request (objectives, labels), storing each unit and handing
# it to ``Job.record`` as it finishes.
Renderer = Callable[[Sequence[Objective], Sequence[str], Sequence[str]], None]


def _identity(path: Path | None) -> object:
    """A file's (path, size, modification time), so that a changed file changes a key."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _option_args(group: object, skip: Sequence[str] = ()) -> list[str]:
    """The command-line arguments that give ``group``'s non-default values."""
    args = []
    for f in fields(group):
        value, default = getattr(group, f.name), OPTIONS[f.name][1]
        if f.name in skip or value == default or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")  # every option is named after its field
        if value is True:
            args.append(flag)
        elif isinstance(value, list):
            args += [a for v in value for a in (flag, str(v))]
        else:
            args += [flag, str(value)]
    return args


@dataclass
class Job:
    """One rendering command: its options, the adapted model, the store and the summary."""

    command: str
    model: ModelOptions
    rendering: RenderOptions
    output: OutputOptions
    accent: AccentOptions = field(default_factory=AccentOptions)
    given: InputOptions = field(default_factory=InputOptions)
    examples: ExamplesOptions = field(default_factory=ExamplesOptions)
    directions: DirectionOptions = field(default_factory=DirectionOptions)
    copies_to_top: bool = True  # copy each unit's files to the top of the output folder

    def __post_init__(self) -> None:
        self.rendering.check()
        self.accent.check()
        self.examples.check()
        recipes_of(self.rendering.preset, **self.overrides())  # bad values fail before loading
        # The precision "auto" gives on this job's device: part of its results' key.
        self.precision = resolve_precision(self.rendering.precision,
                                           resolve_device(self.rendering.device))
        self.adapted: Adapted = load_adapted(self.model, self.given)
        self.loaded = self.adapted.loaded
        self.kind = self.adapted.kind
        self.architecture = architecture_of(self.loaded.module, self.loaded.is_image)
        self.folder = prepare_dir(self.output.out)
        self.summary = Summary(self.folder, warn)
        self.store = ResultStore(self.folder, self.settings(), self.kind)
        self.stored: dict[str, StoredUnit] = {}
        self.rows: dict[str, dict] = {}
        self.order: list[str] = []  # this run's labels, in the request's order
        self.stems: dict[str, str] = {}  # label -> file stem at the top of the folder
        self.targets: dict[str, Objective] = {}  # label -> its objective
        self.found: Examples | None = None  # dataset examples, once found
        # target name -> (target, options) that render it again, for units that need more
        # than their target string (directions)
        self.sources: dict[str, tuple[str, list[str]]] = {}
        self.resumed = 0
        self.seconds = 0.0
        if not self.output.quiet:
            for note in self.adapted.notes:
                log(f"note: {note}")

    # -- settings -------------------------------------------------------------------------

    def overrides(self) -> dict:
        accent = self.accent.overrides()
        return {**self.rendering.overrides(), **{k: v for k, v in accent.items() if v is not None},
                **({"param": self.rendering.param} if self.rendering.param else {})}

    def settings(self) -> dict:
        """Everything that decides a unit's result (not the device, batch size, CUDA graphs or
        folder): the key of the results store."""
        loaded = self.loaded
        norm = loaded.normalization
        return {
            "model": loaded.name, "weights": _identity(self.model.weights),
            "input_shape": list(loaded.input_shape),
            "normalization": [norm.mean.tolist(), norm.std.tolist()],
            "model_options": {k: v for k, v in asdict(self.model).items()
                              if k not in ("model", "weights", "fixed_inputs")},
            "fixed_inputs": _identity(self.model.fixed_inputs),
            "inputs": {**asdict(self.given), "bounds": _identity(self.given.bounds),
                       "vocab": _identity(self.given.vocab)},
            "kind": self.kind.name,
            "preset": self.rendering.preset,
            "recipes": {name: asdict(r) for name, r in
                        recipes_of(self.rendering.preset, self.architecture,
                                   **self.overrides()).items()},
            "pool": self.rendering.pool, "seed": self.rendering.seed,
            **{name: value for name, value in (("layout", self.rendering.layout),
                                                ("prefix_tokens", self.rendering.prefix_tokens))
               if value is not None},
            "precision": self.precision,
            "spectrum": None if self.rendering.spectrum_from is None else
            [_identity(p) for p in find_images(self.rendering.spectrum_from, recursive=False)],
            "start": _identity(self.accent.from_image), "copies": self.accent.copies,
            **({"directions": [_identity(p) for p in self.directions.direction or []],
                "toward_images": [_identity(p) for p in self.directions.toward_image or []]}
               if self.directions.given else {}),
        }

    def header(self) -> dict:
        """The top of ``summary.json``: model, device, and this run's settings."""
        resolved = recipe(self.rendering.preset, **self.overrides())
        return {"model": self.loaded.name, "device": str(resolve_device(self.rendering.device)),
                "command": self.command,
                "settings": {**self.settings(), **{k: v for k, v in self.overrides().items()},
                             "closeness": resolved.closeness, "diversity": resolved.diversity,
                             "batch_size": self.rendering.batch_size or "auto",
                             "graphs": self.rendering.graphs,
                             "settings_key": self.store.key},
                "resumed": self.resumed, "render_seconds": round(self.seconds, 3)}

    # -- targets --------------------------------------------------------------------------

    def objectives(self, targets: Sequence[str]) -> list[Objective]:
        """Target strings -> objectives (with the job's pooling and layout), checked against
        the model and bound to it (each layer's layout found or checked)."""
        border = recipe(self.rendering.preset, **self.overrides()).channel_border
        options = self.rendering
        objectives = [parse_target(t, self.loaded.module, self.loaded.class_names,
                                   pool=options.pool, border=border, layout=options.layout,
                                   prefix=options.prefix_tokens) for t in targets]
        return self.bound(objectives)

    def direction_objectives(self, targets: Sequence[str]) -> tuple[list[Objective], list[str]]:
        """Each target layer (``output``: the model's output) along each --direction and
        toward each --toward-image: (objectives, labels LAYER~FILE-STEM)."""
        given, options = self.directions, self.rendering
        objectives, labels = [], []
        for target in targets:
            layer = MODEL_OUTPUT if target.strip() == "output" else target.strip()
            if ":" in layer or "@" in layer:
                raise FeatscopeError(f"with --direction or --toward-image, a target is a layer "
                                     f"or `output`, not {target!r}")
            resolve_layer(self.loaded.module, layer)
            for flag, paths in (("--direction", given.direction or []),
                                ("--toward-image", given.toward_image or [])):
                for path in paths:
                    label = f"{target.strip()}~{path.stem}"
                    if flag == "--direction":
                        objective = Direction(layer, read_direction(path), pool=options.pool,
                                              cosine=True, layout=options.layout,
                                              prefix=options.prefix_tokens, name=label)
                    else:
                        objective = toward_image(self.loaded, layer, path, options.layout,
                                                 options.prefix_tokens, name=label)
                    objectives.append(objective)
                    labels.append(label)
                    self.sources[label] = (target.strip(), [flag, str(path)])
        return self.bound(objectives), labels

    def bound(self, objectives: Sequence[Objective]) -> list[Objective]:
        """``objectives`` checked against the model's outputs and bound to it."""
        self.adapted.check_targets(set().union(*(o.layers for o in objectives)))
        return bind_objectives(objectives, self.loaded.module, self.loaded.input_shape,
                               self.loaded.class_names)

    def with_copies(self, objectives: Sequence[Objective], labels: Sequence[str]
                    ) -> tuple[list[Objective], list[str]]:
        """Each objective --copies times, each copy its own unit with its own files
        (labelled ``LABEL#j``)."""
        copies = self.accent.copies
        if copies == 1:
            return list(objectives), list(labels)
        return ([o for o in objectives for _ in range(copies)],
                [f"{label}#{j}" for label in labels for j in range(copies)])

    def reproduce(self, unit: StoredUnit) -> str:
        """The `featscope render` command that renders ``unit`` again, exactly."""
        target = unit.target.removesuffix(f"/{self.rendering.pool}")
        target, extra = self.sources.get(unit.target, (target, []))
        args = ["featscope", "render", target, *extra, *_option_args(self.model),
                *_option_args(self.given), *_option_args(self.rendering, ("device",
                                                                          "batch_size",
                                                                          "graphs",
                                                                          "precision")),
                "--precision", self.precision, *_option_args(self.accent)]
        return shlex.join([*args, "--out", "reproduced"])

    # -- rendering ------------------------------------------------------------------------

    def render(self, objectives: Sequence[Objective], labels: Sequence[str] | None = None,
               renderer: Renderer | None = None) -> list[StoredUnit]:
        """Every unit, from the store or rendered now (by ``renderer``, default: in this
        process); in the request's order."""
        labels = list(labels or [o.name for o in objectives])
        todo = self.resume(objectives, labels)
        self.render_missing(objectives, labels, todo, renderer)
        return [self.stored[label] for label in labels if label in self.stored]

    def resume(self, objectives: Sequence[Objective], labels: Sequence[str]) -> list[str]:
        """Enter the units of the request already in the store; the labels still missing."""
        labels = list(labels)
        self.order = labels
        self.stems = dict(zip(labels, file_stems(labels)))
        self.targets = dict(zip(labels, objectives))
        stored = {} if self.output.fresh else {label: self.store.get(label) for label in labels}
        todo = [label for label in labels if stored.get(label) is None]
        self.resumed = len(labels) - len(todo)
        for unit in stored.values():
            if unit is not None:
                self._enter(unit)
        if not self.output.quiet and self.resumed:
            log(f"resumed {self.resumed} of {len(labels)} units from {self.store.folder}; "
                f"rendering {len(todo)}")
        return todo

    def render_missing(self, objectives: Sequence[Objective], labels: Sequence[str],
                       todo: Sequence[str], renderer: Renderer | None = None) -> None:
        """Render the labels ``todo`` of the request; on Ctrl-C say what is saved."""
        if todo:
            try:
                (renderer or self._render)(objectives, labels, todo)
            except RenderError:
                pass  # the failed units are stored and entered with their errors
            except KeyboardInterrupt:
                done = sum(label in self.stored for label in labels)
                log(f"interrupted: {done} of {len(labels)} unit(s) finished and saved in "
                    f"{self.folder}; to continue, run the same command again (--resume)")
                raise
        self.write_summary()

    def render_arguments(self) -> dict:
        """``featscope.render``'s keyword arguments for this job's options (not the
        callbacks, labels or the units to render)."""
        start = None
        if self.accent.from_image is not None:
            start = load_image(self.accent.from_image, mode_for(self.loaded.input_shape[0]))
        spectrum = (spectrum_from_folder(self.rendering.spectrum_from)
                    if self.rendering.spectrum_from is not None else None)
        options = self.rendering
        overrides = {k: v for k, v in self.overrides().items() if v is not None}
        return {"preset": options.preset, "seed": options.seed, "device": options.device,
                "batch_size": options.batch_size, "precision": self.precision,
                "graphs": options.graphs,
                "parameterize": getattr(self.kind, "parameterize", None),
                "max_norm": self.given.max_norm, "start": start, "spectrum": spectrum,
                **overrides}

    def _render(self, objectives: Sequence[Objective], labels: Sequence[str],
                todo: Sequence[str]) -> None:
        # Each finished batch is written on a worker thread while the next one renders; the
        # block ends only when the last is written (also on an error or Ctrl-C).
        with Background() as writes:
            render(self.loaded, objectives, labels=labels, only=todo,
                   progress=not self.output.quiet and sys.stderr.isatty(),
                   on_batch=lambda results: self._save(results, writes),
                   **self.render_arguments())

    def _save(self, results: list[UnitResult], writes: Background | None = None) -> None:
        """Store a finished batch and enter it in the summary: on ``writes``'s thread while
        the next batch renders, or now. What uses the model (the input kind's measurements)
        runs now, before the next batch has the model."""
        measure = getattr(self.kind, "measure", None)
        if measure is not None:
            done = [r for r in results if r.image is not None]
            if done:
                images = torch.stack([r.image for r in done])
                objectives = [self.targets[r.label] for r in done]
                for r, extra in zip(done, measure(self.loaded.module, objectives, images)):
                    r.extra.update(extra, soft_hard_gap=r.final - extra["objective_hard_tokens"])
        if writes is None:
            self._store(results)
        else:
            writes.submit(lambda: self._store(results))

    def _store(self, results: list[UnitResult]) -> None:
        """Write a batch's units (files, then each record) and the summary."""
        for result in results:
            try:
                self.record([self.store.put(result)], summary=False)
            except OSError as error:
                try:
                    self.write_summary()  # what was saved before the failure stays listed
                except OSError:
                    pass
                raise FeatscopeError(
                    f"cannot write the result of {result.label} to {str(self.folder)!r}: "
                    f"{error.strerror or error}. The {len(self.stored)} unit(s) finished before "
                    "it are saved; free some space and run the same command again (--resume)"
                ) from None
        self.write_summary()

    def record(self, units: Sequence[StoredUnit], summary: bool = True) -> None:
        """Enter units just stored (here or by workers) in this run's rows, and write
        ``summary.json`` unless told not to."""
        for unit in units:
            self.seconds += unit.seconds
            self._enter(unit)
        if summary:
            self.write_summary()

    def _enter(self, unit: StoredUnit) -> None:
        """Add a stored unit to this run's rows (its files copied to the top when asked)."""
        self.stored[unit.label] = unit
        reproduce = None if unit.error else self.reproduce(unit)
        self.rows[unit.label] = row_of(unit, None, reproduce)  # the store's files, at first
        self._annotate(unit)
        if self.copies_to_top and unit.files:  # (a full disk here keeps the row above)
            self.rows[unit.label] = row_of(unit, self._export(unit), reproduce)
            self._annotate(unit)

    def _annotate(self, unit: StoredUnit) -> None:
        """A unit's dataset examples and ratio to the best image, in its row (once found)."""
        if self.found is not None:
            row = self.rows[unit.label]
            row["examples"] = [asdict(e) for e in self.found.by_target.get(unit.target, [])]
            row["ratio_to_best_image"] = self.found.ratio(unit.target, unit.objective or 0.0)

    def _export(self, unit: StoredUnit) -> dict[str, str]:
        """Copy a unit's files to ``OUT/STEM...``, as a command's results for people to open."""
        stem, cache_stem = self.stems[unit.label], self.store.stem(unit.label)
        exported = {}
        for what, relative in unit.files.items():
            source = self.folder / relative
            target = self.folder / (stem + source.name[len(cache_stem):])
            if target.exists() and not readable(target):
                warn(f"{unit.label}: {target.name} was missing or corrupt; restored from the "
                     "results store")
            copy_file(source, target)
            exported[what] = target.name
        return exported

    def write_summary(self, extra: dict | None = None) -> None:
        if extra:
            self.summary.extra.update(extra)
        rows = [self.rows[label] for label in self.order if label in self.rows]
        self.summary.write(self.header(), rows, {self.store.key: self.settings()})

    @property
    def failed(self) -> list[StoredUnit]:
        """This run's units that failed (stored with their error)."""
        return [unit for unit in self.stored.values() if unit.error is not None]

    def finish(self) -> None:
        """End the command: failed units make it exit non-zero, after everything is saved."""
        failed = self.failed
        for unit in self.stored.values():
            if unit.zero_gradient or unit.never_activated:
                warn(f"{unit.label}: the unit never activated (its objective never rose above "
                     "its start); try --warmup 32")
            if unit.nan_retries and not unit.error:
                log(f"note: {unit.label}: NaN/Inf during the search; retried with learning "
                    f"rate {unit.nan_retries[-1]:g}")
        if failed:
            raise UnitsFailed(f"{len(failed)} unit(s) failed and are listed in "
                              f"{self.folder / 'summary.json'} (\"failed\"): "
                              + "; ".join(f"{u.label}: {u.error}" for u in failed[:3]))

    # -- dataset examples -----------------------------------------------------------------

    def dataset_examples(self, objectives: Sequence[Objective],
                         find: Callable[[], Examples] | None = None) -> Examples | None:
        """The top-k images of each objective under --images (reused from the folder's cache
        while the model, objectives and files are unchanged); ``find`` finds them when they
        are not (default: ``top_examples`` in this process). Units entered from now on get
        them in their rows too."""
        images = self.examples.images
        if images is None:
            return None
        settings = {"model": self.loaded.name, "weights": _identity(self.model.weights),
                    "targets": [o.name for o in objectives], "k": self.examples.top_k}
        found, reused = cached_examples(
            self.folder, settings, images,
            find or (lambda: top_examples(
                self.loaded, objectives, images, k=self.examples.top_k,
                device=self.rendering.device,
                progress=not self.output.quiet and sys.stderr.isatty())))
        for path, reason in found.skipped:
            warn(f"skipped unreadable image {path}: {reason}")
        if not self.output.quiet:
            log(f"dataset examples: {found.images} images read, {len(found.skipped)} skipped"
                + (" (from the cache)" if reused else ""))
        self.found = found
        for unit in self.stored.values():
            self._annotate(unit)
        self.summary.extra["dataset"] = {
            "folder": str(images), "images": found.images,
            "skipped": [{"path": p, "reason": r} for p, r in found.skipped]}
        return found

    def pictures(self, units: Sequence[StoredUnit]) -> list[Image.Image]:
        """The units' main pictures, as RGB PIL images (a failed unit's is grey)."""
        loaded = []
        for unit in units:
            if unit.image is None:
                side = self.loaded.input_shape[-1] if self.loaded.is_image else 64
                loaded.append(Image.new("RGB", (side, side), (128, 128, 128)))
                continue
            with Image.open(self.folder / unit.image) as picture:
                loaded.append(picture.convert("RGB"))
        return loaded


def value_text(value: float | None) -> str:
    """An objective's value for a label: 3 significant digits, or "failed"."""
    return "failed" if value is None else f"{value:.3g}"
