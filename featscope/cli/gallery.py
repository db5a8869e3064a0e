"""`featscope gallery`: a browsable static site of layers, units and dataset examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from ..analysis.routes import (
    MIN_NATURALS,
    Route,
    flagged_note,
    path_layers,
    skipped_note,
    trace_routes,
)
from ..drawing.grid import overview
from ..engine.device import module_device, resolve_device
from ..engine.probing import MODEL_OUTPUT, LayerInfo
from ..errors import FeatscopeError
from ..files.images import find_images, load_image, load_prepared, mode_for, to_tensor
from ..files.writing import save_png
from ..objectives.base import Objective
from ..transforms.affine import resize_to
from ..views.gallery import LayerEntry, UnitEntry, write_gallery
from ..views.selection import choose_layers, class_targets, layer_infos
from .app import log
from .options import (
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


@command("gallery")
def gallery_command(
    model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
    which: LayerOptions, examples: ExamplesOptions,
    every: Annotated[bool, typer.Option("--all", help="every unit of each layer")] = False,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="also render these classes, e.g. 1,207,goldfinch")] = None,
) -> None:
    """Write a browsable static HTML gallery of layers and units (open OUT/index.html).

    An index of layers, a page per layer with its unit grid, a page per unit with its
    objective curve, dataset examples (--images) and the command that reproduces it. With
    --images, each unit page also shows the route check (does the visualization travel
    through the network as the unit's top natural images do?) and layer pages mark the units
    it flags. No server or network needed. Running the same command again reuses the units
    already rendered.
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
    job.render(objectives)
    job.dataset_examples(objectives)
    job.write_summary({"layers": chosen})
    routes = check_routes(job, targets, infos)
    index = write_site(job, sections, infos, routes=routes)
    if not output.quiet:
        log(f"wrote the gallery: {Path(index).resolve().as_uri()}")
    job.finish()


# A layer of the site and its units: (layer, [(the unit's name in the layer, its label)]).
Section = tuple[str, list[tuple[str, str]]]


def write_site(job: Job, sections: Sequence[Section], infos: dict[str, LayerInfo], *,
               status: str | None = None, refresh: int | None = None,
               written: set[str] | None = None,
               routes: Mapping[str, Route] | None = None) -> Path:
    """The gallery of the job's units stored so far (a unit not yet rendered is left out,
    and its layer says how many are there): index with the overview figure, layer and unit
    pages. ``status``, ``refresh`` and ``written``: see ``write_gallery``; ``routes``: the
    route check of units by label (``check_routes``)."""
    routes = routes or {}
    found = job.found
    settings = job.header()["settings"]
    entries, figure_rows = [], []
    for layer, members in sections:
        done = [(name, job.stored[label]) for name, label in members if label in job.stored]
        units = [UnitEntry(name, unit.target, job.folder / unit.image,
                           unit.objective or 0.0, unit.objective_initial or 0.0, unit.history,
                           job.rows[unit.label]["reproduce"] or "",
                           {**settings, "recipe": unit.preset, "seed": unit.seed},
                           found.by_target.get(unit.target, []) if found else [],
                           found.ratio(unit.target, unit.objective or 0.0) if found else None,
                           unit.zero_gradient, unit.objective_transformed, routes.get(unit.label))
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


def check_routes(job: Job, labels: Sequence[str], infos: dict[str, LayerInfo]
                 ) -> dict[str, Route]:
    """The route check of the units ``labels`` (those rendered, with a layer before theirs)
    against the images under --images, in one batch: {label: its route}. None without
    --images; with fewer than ``MIN_NATURALS`` readable images, none and a line that says so.
    """
    if job.found is None:
        return {}
    say = (lambda line: None) if job.output.quiet else log
    paths, readable = _route_images(job)
    if len(paths) < MIN_NATURALS:
        say(skipped_note(len(paths), "--images"))
        return {}
    units = [job.stored[label] for label in labels
             if label in job.stored and job.stored[label].image is not None]
    checked = [unit for unit in units
               if _has_route(list(infos.values()), job.targets[unit.label])]
    if len(checked) < len(units):
        say(f"route check: {len(units) - len(checked)} unit(s) have no layer with a feature "
            "map before theirs: not checked")
    if not checked:
        return {}
    size = tuple(job.loaded.input_shape[1:])
    mode = mode_for(job.loaded.input_shape[0])
    naturals = [to_tensor(load_prepared(path, size, mode)) for path in paths]  # as the examples
    images = torch.cat([resize_to(load_image(job.folder / unit.image, mode)[None], size)
                        for unit in checked])  # (B, C, H, W)
    module = job.loaded.module
    home = module_device(module)
    try:
        module.to(resolve_device(job.rendering.device))
        routes = trace_routes(job.loaded, [job.targets[unit.label] for unit in checked], images,
                              naturals)
    finally:
        module.to(home)
    say(flagged_note([unit.label for unit in checked], routes)
        + (f"; against {len(paths)} of the {readable} images" if len(paths) < readable else ""))
    return {unit.label: route for unit, route in zip(checked, routes)}


def _has_route(layers: Sequence[LayerInfo], objective: Objective) -> bool:
    """Whether a layer with a feature map runs before the first one ``objective`` reads."""
    try:
        path_layers(layers, objective)
    except FeatscopeError:
        return False
    return True


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
