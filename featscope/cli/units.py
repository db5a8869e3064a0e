"""What the unit commands (sheet, overview, classes, gallery) share: options, the cached
batch rendering, dataset examples, and the files every command writes."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer
from PIL import Image

from ..cache import RenderCache, Rendered, UnitResult, cached_examples, render_cached
from ..dataset import DATASET_BATCH, Examples, crop, top_examples
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..objectives import Objective
from ..outputs import file_stems, save_png, write_json
from ..probing import LayerInfo, list_layers, resolve_layer
from ..render import AUTO, CLASS_PRESET, PRESETS, UNIT_PRESET, Recipe, recipe, resolve_device
from ..sheets import grid
from .common import console

PresetOption = Annotated[str, typer.Option(
    help=f"recipe: {AUTO} (classes: {CLASS_PRESET}, other units: {UNIT_PRESET}), "
         f"{', '.join(PRESETS)}")]
StepsOption = Annotated[Optional[int], typer.Option(help="search steps (preset's if unset)")]
SizeOption = Annotated[Optional[int], typer.Option(help="image side in px (preset's if unset)")]
LrOption = Annotated[Optional[float], typer.Option(help="learning rate (preset's if unset)")]
ParamOption = Annotated[Optional[str], typer.Option(help="pixel or fourier (preset's if unset)")]
PoolOption = Annotated[str, typer.Option(help="reduce a feature map by mean or max")]
SeedOption = Annotated[int, typer.Option(help="random seed")]
BatchOption = Annotated[Optional[int], typer.Option(
    help="units per forward pass (bounds memory; default: the fastest for the device, 32 on a "
         "GPU, 1 for 224 px images on a CPU)")]
ColumnsOption = Annotated[int, typer.Option(help="cells per row of the grid")]
ImagesOption = Annotated[Optional[Path], typer.Option(
    "--images", help="a folder of images (searched recursively): show the top-k dataset "
                     "examples of each unit beside its visualization")]
TopKOption = Annotated[int, typer.Option("--top-k", help="dataset examples per unit")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="output folder")]


@dataclass
class Job:
    """The settings of one unit command, as given on the command line."""

    model: str
    weights: Path | None
    preset: str = AUTO
    steps: int | None = None
    size: int | None = None
    lr: float | None = None
    param: str | None = None
    pool: str = "mean"
    seed: int = 0
    device: str = "auto"
    batch_size: int | None = None
    images: Path | None = None
    top_k: int = 5
    quiet: bool = False

    def check(self) -> None:
        """Reject bad options before the model loads: a clear error, early."""
        if self.param is not None and self.param not in ("pixel", "fourier"):
            raise FeatscopeError(f"unknown --param {self.param!r}; valid: pixel, fourier")
        if self.pool not in ("mean", "max"):
            raise FeatscopeError(f"unknown --pool {self.pool!r}; valid: mean, max")
        if self.batch_size is not None and self.batch_size < 1:
            raise FeatscopeError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.top_k < 1:
            raise FeatscopeError(f"--top-k must be at least 1 (got {self.top_k})")
        if self.images is not None and not self.images.is_dir():
            raise FeatscopeError(f"--images {str(self.images)!r} is not a folder")
        self.recipe()

    def recipe(self) -> Recipe:
        """The recipe of the job's units ("auto": that of units other than classes)."""
        return self.recipes()[0]

    def recipes(self) -> list[Recipe]:
        """Every recipe the job may use: "auto" renders classes with another."""
        names = (UNIT_PRESET, CLASS_PRESET) if self.preset == AUTO else (self.preset,)
        return [recipe(name, steps=self.steps, size=self.size, lr=self.lr, param=self.param)
                for name in names]

    @property
    def progress(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def render_options(self) -> dict:
        return {"preset": self.preset, "steps": self.steps, "size": self.size, "lr": self.lr,
                "param": self.param, "seed": self.seed, "device": self.device}

    def cache_settings(self, loaded: LoadedModel) -> dict:
        """Everything that decides a unit's image (not the device, batch size or output)."""
        return {"model": loaded.name, "weights": str(self.weights) if self.weights else None,
                "preset": self.preset, "recipes": [asdict(r) for r in self.recipes()],
                "pool": self.pool, "seed": self.seed}

    def command(self, targets: Sequence[str]) -> str:
        """The `featscope render` command that renders ``targets`` as one batch, like here."""
        # Cache targets are objective names; `render` takes the pooling as --pool instead.
        plain = [t.removesuffix(f"/{self.pool}") for t in targets]
        args = ["featscope", "render", *plain, "--model", self.model]
        if self.weights:
            args += ["--weights", str(self.weights)]
        args += ["--preset", self.preset, "--pool", self.pool, "--seed", str(self.seed)]
        for name in ("steps", "size", "lr", "param"):
            if getattr(self, name) is not None:
                args += [f"--{name}", str(getattr(self, name))]
        return shlex.join([*args, "--out", "reproduced"])


def layer_infos(loaded: LoadedModel) -> dict[str, LayerInfo]:
    """Every probe-able layer with its output shape, from one forward pass."""
    example = torch.zeros((1, *loaded.input_shape))
    return {info.name: info for info in list_layers(loaded.module, example)}


def layer_features(loaded: LoadedModel, layer: str,
                   infos: dict[str, LayerInfo] | None = None) -> int:
    """The number of features (channels) of ``layer``."""
    resolve_layer(loaded.module, layer)
    info = (infos or layer_infos(loaded)).get(layer)
    if info is None or not info.shape:
        raise FeatscopeError(f"layer {layer!r} did not produce a tensor on a forward pass; "
                             "choose another from `featscope layers`")
    return info.features()


def pictures(units: Sequence[UnitResult]) -> list[Image.Image]:
    """The rendered images of ``units``, as RGB PIL images."""
    loaded = []
    for unit in units:
        with Image.open(unit.image) as picture:
            loaded.append(picture.convert("RGB"))
    return loaded


def log(message: str) -> None:
    console.print(message, highlight=False)


def render_units(job: Job, loaded: LoadedModel, objectives: Sequence[Objective],
                 out: Path) -> Rendered:
    """Render what the cache under ``out`` lacks, in batches; say what was resumed."""
    if not loaded.is_image:
        raise FeatscopeError(
            f"sheets, overviews and galleries show images, but {loaded.name} takes input of "
            f"shape {tuple(loaded.input_shape)}; use `featscope render` for other inputs")
    cache = RenderCache(out, job.cache_settings(loaded))
    try:
        rendered = render_cached(loaded, objectives, cache, batch_size=job.batch_size,
                                 progress=job.progress, render_options=job.render_options(),
                                 log=None if job.quiet else log)
    except KeyboardInterrupt:
        saved = sum(cache.get(o.name) is not None for o in objectives)
        log(f"{saved} of {len(objectives)} units are saved in {cache.folder}; "
            "run the same command again to resume")
        raise
    for unit in rendered.units:
        if unit.zero_gradient:
            console.print(f"[yellow]warning[/]: {unit.target}: the input gradient was zero at "
                          "every step; the unit never activated or does not depend on the input")
    return rendered


def dataset_examples(job: Job, loaded: LoadedModel, objectives: Sequence[Objective],
                     out: Path) -> Examples | None:
    """The top-k images of each objective under --images (reused from the cache under
    ``out`` when the model, objectives and files are unchanged)."""
    if job.images is None:
        return None
    settings = {"model": loaded.name, "weights": str(job.weights) if job.weights else None,
                "targets": [o.name for o in objectives], "k": job.top_k,
                "border": job.recipe().channel_border}
    examples, reused = cached_examples(
        out, settings, job.images,
        lambda: top_examples(loaded, objectives, job.images, k=job.top_k,
                             batch_size=job.batch_size or DATASET_BATCH, device=job.device,
                             progress=job.progress))
    for path, reason in examples.skipped:
        console.print(f"[yellow]warning[/]: skipped unreadable image {path}: {reason}",
                      highlight=False)
    if not job.quiet:
        log(f"dataset examples: {examples.images} images read, {len(examples.skipped)} skipped"
            + (" (from the cache)" if reused else ""))
    return examples


def ratio(unit: UnitResult, examples: Examples | None) -> float | None:
    """The visualization's activation over the best natural image's (when that is > 0)."""
    best = examples.best(unit.target) if examples else None
    return unit.objective / best if best and best > 0 else None


def write_results(out: Path, job: Job, loaded: LoadedModel, rendered: Rendered,
                  examples: Examples | None, extra: dict | None = None,
                  copies: bool = True) -> dict:
    """``summary.json`` and, with ``copies``, one PNG per unit copied from the cache into
    ``out`` (as `render` writes them); otherwise the rows point into the cache."""
    rows = []
    for unit, stem in zip(rendered.units, file_stems(u.target for u in rendered.units)):
        path = unit.image
        if copies:
            with Image.open(unit.image) as picture:
                path = save_png(picture.copy(), out / f"{stem}.png")
        row = {"target": unit.target, "image": str(path),
               "objective_initial": unit.objective_initial, "objective": unit.objective,
               "seconds": unit.seconds, "zero_gradient": unit.zero_gradient,
               "reproduce": job.command(unit.batch)}
        if examples is not None:
            row["examples"] = [asdict(e) for e in examples.by_target[unit.target]]
            row["ratio_to_best_image"] = ratio(unit, examples)
        rows.append(row)
    summary = {"model": loaded.name, "device": str(resolve_device(job.device)),
               "settings": {**job.cache_settings(loaded), "batch_size": job.batch_size or "auto"},
               "resumed": rendered.resumed, "render_seconds": rendered.seconds,
               **(extra or {}), "results": rows}
    if examples is not None:
        summary["dataset"] = {"folder": str(job.images), "images": examples.images,
                              "skipped": [{"path": p, "reason": r} for p, r in examples.skipped]}
    write_json(summary, out / "summary.json")
    return summary


def examples_figure(rendered: Rendered, examples: Examples, labels: Sequence[str],
                    size: tuple[int, int], cell: int = 112) -> Image.Image:
    """A row per unit: its visualization, then its top-k dataset crops, all labelled."""
    cells, texts = [], []
    k = max(len(examples.by_target[u.target]) for u in rendered.units)
    for unit, visual, label in zip(rendered.units, pictures(rendered.units), labels):
        cells.append(visual.resize((cell, cell)))
        best = examples.best(unit.target)
        texts.append(f"{label} {unit.objective:.3g}" + (f" {unit.objective / best:.2g}x"
                                                        if best and best > 0 else ""))
        found = examples.by_target[unit.target]
        for e in found:
            cells.append(crop(e, size).resize((cell, cell)))
            texts.append(f"{Path(e.path).stem} {e.activation:.3g}")
        blank = Image.new("RGB", (cell, cell), (255, 255, 255))
        cells += [blank] * (k - len(found))
        texts += [""] * (k - len(found))
    return grid(cells, texts, columns=k + 1, cell=cell)
