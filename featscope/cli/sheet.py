"""`featscope sheet`: many units of one layer, rendered in batches, as one labelled grid."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..drawing.grid import grid
from ..files.writing import save_png
from ..views.figures import examples_figure
from ..views.selection import layer_features, select_units
from .app import log
from .options import ExamplesOptions, ModelOptions, OutputOptions, RenderOptions, command
from .session import Job, value_text

ColumnsOption = Annotated[int, typer.Option("--columns", help="cells per row of the grid")]


@command("sheet")
def sheet_command(
    layer: Annotated[str, typer.Argument(help="the layer (a path from `featscope layers`)")],
    model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
    examples: ExamplesOptions,
    units: Annotated[Optional[str], typer.Option(
        "--units", help="which units: a range 0:64 or a list 3,17,40 (default: the first 64)")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="every unit of the layer")] = False,
    columns: ColumnsOption = 8,
) -> None:
    """Render many units of LAYER in batches into one labelled grid.

    Writes sheet.png, one PNG per unit and summary.json to --out (and examples.png with
    --images). Running the same command again reuses the units already rendered.
    """
    job = Job("sheet", model, rendering, output, examples=examples)
    chosen, note = select_units(units, layer_features(job.loaded, layer,
                                                      order=rendering.layout,
                                                      prefix=rendering.prefix_tokens), every)
    if note and not output.quiet:
        log(f"note: {note}")
    objectives = job.objectives([f"{layer}:{k}" for k in chosen])
    stored = job.render(objectives)
    found = job.dataset_examples(objectives)
    labels = [f"#{k} {value_text(u.objective)}" + (f" {r:.2g}x" if found and (
        r := found.ratio(u.target, u.objective or 0.0)) else "") for k, u in zip(chosen, stored)]
    sheet = save_png(grid(job.pictures(stored), labels, columns=columns), job.folder / "sheet.png")
    extra = {"layer": layer, "units": chosen, "sheet": sheet.name}
    if found is not None:
        figure = examples_figure([u.target for u in stored], job.pictures(stored),
                                 [u.objective for u in stored], found, [str(k) for k in chosen],
                                 tuple(job.loaded.input_shape[1:]))
        extra["examples_figure"] = save_png(figure, job.folder / "examples.png").name
    job.write_summary(extra)
    if not output.quiet:
        log(f"wrote {sheet} ({len(chosen)} units of {layer}, {job.seconds:.1f} s rendering) "
            f"and {job.folder / 'summary.json'}")
    job.finish()
