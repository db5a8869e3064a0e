"""`featscope gallery`: a browsable static site of layers, units and dataset examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from ..analysis.report import DRAWS, Measured, load_judge, measure
from ..analysis.routes import flagged_note, read_naturals, skipped_note
from ..drawing.grid import overview
from ..engine.device import placed, resolve_device
from ..engine.probing import MODEL_OUTPUT, LayerInfo
from ..files.images import find_images, load_image, load_prepared, mode_for, to_tensor
from ..files.writing import save_png
from ..models import LoadedModel
from ..transforms.affine import resize_to
from ..views.gallery import LayerEntry, Measurement, UnitEntry, write_gallery
from ..views.selection import choose_layers, class_targets, layer_infos
from .app import log
from .options import (
    JUDGE_HELP,
    ExamplesOptions,
    LayerOptions,
    ModelOptions,
    OutputOptions,
    RenderOptions,
    command,
)
from .session import Job, value_text

OVERVIEW_UNITS = 8  # units per layer in the index's overview figure
ROUTE_IMAGES = 256  # natural images the route check reads at most, besides units' examples
MEASURE_CHUNK = 256  # units whose images are measured at once


@command("gallery")
def gallery_command(
    model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
    which: LayerOptions, examples: ExamplesOptions,
    every: Annotated[bool, typer.Option("--all", help="every unit of each layer")] = False,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="also render these classes, e.g. 1,207,goldfinch")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help=JUDGE_HELP)] = None,
) -> None:
    """Write a browsable static HTML gallery of layers and units (open OUT/index.html).

    An index of layers, a page per layer with its unit grid, a page per unit with its
    objective curve, its robustness, dataset examples (--images) and the command that
    reproduces it. With --images, each unit page also shows the route check (does the
    visualization travel through the network as the unit's top natural images do?) and layer
    pages mark the units it flags; with --judge, class pages show whether another classifier
    sees the class, also as 64 and 48 px thumbnails. summary.json holds the same
    measurements as `featscope evaluate` writes. No server or network needed. Running the same
    command again reuses the units already rendered.
    """
    job = Job("gallery", model, rendering, output, examples=examples, copies_to_top=False)
    infos = layer_infos(job.loaded)
    chosen = choose_layers(job.loaded, which.layers, which.count,
                           None if every else which.per_layer, infos,
                           rendering.layout, rendering.prefix_tokens)
    targets = [f"{layer}:{k}" for layer, units in chosen.items() for k in units]
    sections = [(layer, [(str(k), f"{layer}:{k}") for k in units])
                for layer, units in chosen.items()]
    if classes:
        wanted = class_targets(job.loaded, classes, infos)
        targets += wanted
        sections.append((MODEL_OUTPUT, [(t.split(":", 1)[1], t) for t in wanted]))
    objectives = job.objectives(targets)
    judged = load_judge(judge, job.loaded, objectives) if judge else None  # before rendering
    job.render(objectives)
    job.dataset_examples(objectives)
    measured = measure_units(job, targets, judged)
    job.write_summary({"layers": chosen, **measured.summary})
    index = write_site(job, sections, infos, measured=measured.by_label)
    if not output.quiet:
        log(f"wrote the gallery: {Path(index).resolve().as_uri()}")
    job.finish()


# A layer of the site and its units: (layer, [(the unit's name in the layer, its label)]).
Section = tuple[str, list[tuple[str, str]]]


def write_site(job: Job, sections: Sequence[Section], infos: dict[str, LayerInfo], *,
               status: str | None = None, refresh: int | None = None,
               written: set[str] | None = None,
               measured: Mapping[str, Measurement] | None = None) -> Path:
    """The gallery of the job's units stored so far (a unit not yet rendered is left out,
    and its layer says how many are there): index with the overview figure, layer and unit
    pages. ``status``, ``refresh`` and ``written``: see ``write_gallery``; ``measured``: the
    units' measurements by label (``measure_units``)."""
    measured = measured or {}
    found = job.found
    settings = job.header()["settings"]
    entries, figure_rows = [], []
    nothing = Measurement()
    for layer, members in sections:
        done = [(name, job.stored[label]) for name, label in members if label in job.stored]
        units = [UnitEntry(name, unit.target, job.folder / unit.image,
                           unit.objective or 0.0, unit.objective_initial or 0.0, unit.history,
                           job.rows[unit.label]["reproduce"] or "",
                           {**settings, "recipe": unit.preset, "seed": unit.seed},
                           found.by_target.get(unit.target, []) if found else [],
                           found.ratio(unit.target, unit.objective or 0.0) if found else None,
                           unit.zero_gradient, unit.objective_transformed,
                           measured.get(unit.label, nothing))
                 for name, unit in done if unit.image is not None]
        info = infos.get(layer)
        described = "class logits" if layer == MODEL_OUTPUT else \
            f"{info.kind}, output {tuple(info.shape)}"
        if len(done) < len(members):
            described += f" · {len(done)} of {len(members)} rendered so far"
        entries.append(LayerEntry(layer, described, units))
        if layer != MODEL_OUTPUT and done:
            shown = done[:OVERVIEW_UNITS]
            figure_rows.append((layer, job.pictures([unit for _, unit in shown]),
                                [f"#{name} {value_text(unit.objective)}" for name, unit in shown]))
    figures = [save_png(overview(figure_rows), job.folder / "overview.png")] if figure_rows else []
    return write_gallery(job.folder, entries, title=f"featscope gallery: {job.loaded.name}",
                         settings=settings, input_size=tuple(job.loaded.input_shape[1:]),
                         figures=figures, status=status, refresh=refresh, written=written)


@dataclass
class UnitMeasurements:
    """What ``measure_units`` measured: per unit by label, and for summary.json."""

    by_label: dict[str, Measurement]
    summary: dict  # summary.json's "metrics" (the means) and "metrics_settings"


def measure_units(job: Job, labels: Sequence[str],
                  judge: LoadedModel | None = None) -> UnitMeasurements:
    """Measure the rendered units of ``labels`` as ``featscope evaluate`` does (``measure``),
    in chunks of ``MEASURE_CHUNK`` (which bound the memory and leave the values as they are),
    and enter each unit's measurements in its summary row: robustness; with ``judge``, the
    transfer of the class targets; with --images, the route check against those images
    (``_route_images``, read once for every unit; ``measure`` skips it with fewer than
    ``MIN_NATURALS``, and a line says so). The activation ratio is the row's
    ``ratio_to_best_image``, over every image."""
    units = [job.stored[label] for label in labels
             if label in job.stored and job.stored[label].image is not None]
    if not units or not job.loaded.is_image:
        return UnitMeasurements({}, {})
    say = (lambda line: None) if job.output.quiet else log
    size = tuple(job.loaded.input_shape[1:])
    mode = mode_for(job.loaded.input_shape[0])
    targets = [job.targets[unit.label] for unit in units]
    module, device = job.loaded.module, resolve_device(job.rendering.device)
    parts: list[Measured] = []
    with placed(module, device):
        if judge is not None:
            judge.module.to(device)
        naturals, readable = _route_naturals(job)
        read = read_naturals(job.loaded, targets, naturals) if naturals else None
        for start in range(0, len(units), MEASURE_CHUNK):
            chunk = slice(start, start + MEASURE_CHUNK)
            images = torch.cat([resize_to(load_image(job.folder / unit.image, mode)[None], size)
                                for unit in units[chunk]])  # (b, C, H, W)
            parts.append(measure(job.loaded, targets[chunk], images, ratio=False, judge=judge,
                                 naturals=None if read is None else read.select(chunk)))
    measured = Measured([m for part in parts for m in part.metrics],
                        [r for part in parts for r in part.routes],
                        traced=any(part.traced for part in parts))
    if measured.traced:
        say(flagged_note([unit.label for unit in units], measured.routes)
            + (f"; against {len(naturals)} of the {readable} images"
               if len(naturals) < readable else ""))
    elif naturals is not None:
        say(skipped_note(len(naturals), "--images"))
    judged = judge.name if judge is not None else None
    by_label = {}
    for i, unit in enumerate(units):
        job.rows[unit.label].update(measured.row(i))
        by_label[unit.label] = Measurement(measured.metrics[i], measured.routes[i], judged)
    settings = {"natural": None if job.found is None else str(job.examples.images),
                "judge": judged, "draws": DRAWS}
    return UnitMeasurements(by_label, {"metrics": measured.means(),
                                       "metrics_settings": settings})


def _route_naturals(job: Job) -> tuple[list[torch.Tensor] | None, int]:
    """The natural images the route check compares with (``_route_images``), prepared as the
    dataset examples were, and how many under --images were readable; None without
    --images."""
    if job.found is None:
        return None, 0
    paths, readable = _route_images(job)
    size = tuple(job.loaded.input_shape[1:])
    mode = mode_for(job.loaded.input_shape[0])
    return [to_tensor(load_prepared(path, size, mode)) for path in paths], readable


def _route_images(job: Job) -> tuple[list[Path], int]:
    """The images under --images that the route check compares with, and how many were
    readable: all of those the dataset examples read or, where there are more than
    ``ROUTE_IMAGES``, an evenly spread sample of them and every unit's dataset examples."""
    found = job.found
    skipped = {path for path, _ in found.skipped}
    readable = [path for path in find_images(job.examples.images) if str(path) not in skipped]
    if len(readable) <= ROUTE_IMAGES:
        return readable, len(readable)
    shown = {e.path for examples in found.by_target.values() for e in examples}
    spread = set(torch.linspace(0, len(readable) - 1, ROUTE_IMAGES).round().long().tolist())
    return ([path for i, path in enumerate(readable) if i in spread or str(path) in shown],
            len(readable))
