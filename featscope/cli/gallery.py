"""`featscope gallery`: a browsable static site of layers, units and dataset examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..drawing.grid import overview
from ..engine.probing import MODEL_OUTPUT, LayerInfo
from ..files.writing import save_png
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
    objective curve, dataset examples (--images) and the command that reproduces it. No
    server or network needed. Running the same command again reuses the units already
    rendered.
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
    index = write_site(job, sections, infos)
    if not output.quiet:
        log(f"wrote the gallery: {Path(index).resolve().as_uri()}")
    job.finish()


# A layer of the site and its units: (layer, [(the unit's name in the layer, its label)]).
Section = tuple[str, list[tuple[str, str]]]


def write_site(job: Job, sections: Sequence[Section], infos: dict[str, LayerInfo], *,
               status: str | None = None, refresh: int | None = None,
               written: set[str] | None = None) -> Path:
    """The gallery of the job's units stored so far (a unit not yet rendered is left out,
    and its layer says how many are there): index with the overview figure, layer and unit
    pages. ``status``, ``refresh`` and ``written``: see ``write_gallery``."""
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
                           unit.zero_gradient)
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
