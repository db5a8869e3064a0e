"""`featscope gallery`: a browsable static site of layers, units and dataset examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..drawing.grid import overview
from ..engine.probing import MODEL_OUTPUT
from ..files.writing import save_png
from ..views.gallery import LayerEntry, UnitEntry, write_gallery
from ..views.selection import choose_layers, class_targets, layer_infos
from .app import log
from .options import ExamplesOptions, ModelOptions, OutputOptions, RenderOptions, command
from .overview import CountOption, LayersOption
from .session import Job, value_text

OVERVIEW_UNITS = 8  # units per layer in the index's overview figure


@command("gallery")
def gallery_command(
    model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
    examples: ExamplesOptions,
    layers: LayersOption = None,
    count: CountOption = 5,
    per_layer: Annotated[int, typer.Option(
        "--per-layer", help="units per layer (the first N)")] = 8,
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
    chosen = choose_layers(job.loaded, layers, count, None if every else per_layer, infos,
                           rendering.layout, rendering.prefix_tokens)
    targets = [f"{layer}:{k}" for layer, units in chosen.items() for k in units]
    sections = [(layer, [str(k) for k in units]) for layer, units in chosen.items()]
    if classes:
        wanted = class_targets(job.loaded, classes, infos)
        targets += wanted
        sections.append((MODEL_OUTPUT, [t.split(":", 1)[1] for t in wanted]))
    objectives = job.objectives(targets)
    stored = job.render(objectives)
    found = job.dataset_examples(objectives)
    entries, figure_rows, start = [], [], 0
    visuals = job.pictures(stored)
    settings = job.header()["settings"]
    for layer, labels in sections:
        done = stored[start:start + len(labels)]
        units = [UnitEntry(label, unit.target, job.folder / (unit.image or ""),
                           unit.objective or 0.0, unit.objective_initial or 0.0, unit.history,
                           job.rows[unit.label]["reproduce"] or "",
                           {**settings, "recipe": unit.preset, "seed": unit.seed},
                           found.by_target.get(unit.target, []) if found else [],
                           found.ratio(unit.target, unit.objective or 0.0) if found else None,
                           unit.zero_gradient)
                 for label, unit in zip(labels, done) if unit.image is not None]
        info = infos.get(layer)
        described = "class logits" if layer == MODEL_OUTPUT else \
            f"{info.kind}, output {tuple(info.shape)}"
        entries.append(LayerEntry(layer, described, units))
        if layer != MODEL_OUTPUT:
            shown = min(len(labels), OVERVIEW_UNITS)
            figure_rows.append((layer, visuals[start:start + shown],
                                [f"#{label} {value_text(u.objective)}"
                                 for label, u in zip(labels, done)]))
        start += len(labels)
    figures = [save_png(overview(figure_rows), job.folder / "overview.png")] if figure_rows else []
    job.write_summary({"layers": chosen})
    index = write_gallery(job.folder, entries, title=f"featscope gallery: {job.loaded.name}",
                          settings=settings, input_size=tuple(job.loaded.input_shape[1:]),
                          figures=figures)
    if not output.quiet:
        log(f"wrote the gallery: {Path(index).resolve().as_uri()}")
    job.finish()
