"""`featscope sheet`: many units of one layer, rendered in batches, as one labelled grid."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..models import DEFAULT_MODEL
from ..outputs import prepare_dir, save_png
from ..render import AUTO
from ..sheets import grid, parse_units
from ..targets import parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console, load
from .units import (BatchOption, ColumnsOption, ImagesOption, Job, LrOption, OutOption,
                    ParamOption, PoolOption, PresetOption, QuietOption, SeedOption, SizeOption,
                    StepsOption, TopKOption, dataset_examples, examples_figure, layer_features,
                    pictures, ratio, render_units, write_results)


@app.command("sheet")
def sheet_command(
    layer: Annotated[str, typer.Argument(help="the layer (a path from `featscope layers`)")],
    out: OutOption,
    units: Annotated[Optional[str], typer.Option(
        help="which units: a range 0:64 or a list 3,17,40 (default: the first 64)")] = None,
    every: Annotated[bool, typer.Option("--all", help="every unit of the layer")] = False,
    columns: ColumnsOption = 8,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    preset: PresetOption = AUTO,
    steps: StepsOption = None,
    size: SizeOption = None,
    lr: LrOption = None,
    param: ParamOption = None,
    pool: PoolOption = "mean",
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    batch_size: BatchOption = None,
    images: ImagesOption = None,
    top_k: TopKOption = 5,
    quiet: QuietOption = False,
) -> None:
    """Render many units of LAYER in batches into one labelled grid.

    Writes sheet.png, one PNG per unit and summary.json to --out (and examples.png with
    --images). Running the same command again resumes.
    """
    job = Job(model=model, weights=weights, preset=preset, steps=steps, size=size, lr=lr,
              param=param, pool=pool, seed=seed, device=device, batch_size=batch_size,
              images=images, top_k=top_k, quiet=quiet)
    job.check()
    loaded = load(model, weights)
    chosen = parse_units(units, layer_features(loaded, layer), every)
    border = job.recipe().channel_border
    objectives = [parse_target(f"{layer}:{k}", loaded.module, loaded.class_names, pool=pool,
                               border=border) for k in chosen]
    folder = prepare_dir(out)
    rendered = render_units(job, loaded, objectives, folder)
    examples = dataset_examples(job, loaded, objectives, folder)
    labels = [f"#{k} {u.objective:.3g}" + (f" {r:.2g}x" if (r := ratio(u, examples)) else "")
              for k, u in zip(chosen, rendered.units)]
    sheet = save_png(grid(pictures(rendered.units), labels, columns=columns),
                     folder / "sheet.png")
    extra = {"layer": layer, "units": chosen, "sheet": str(sheet)}
    if examples is not None:
        figure = examples_figure(rendered, examples, [str(k) for k in chosen],
                                 tuple(loaded.input_shape[1:]))
        extra["examples_figure"] = str(save_png(figure, folder / "examples.png"))
    write_results(folder, job, loaded, rendered, examples, extra)
    if not quiet:
        console.print(f"wrote {sheet} ({len(chosen)} units of {layer}, "
                      f"{rendered.seconds:.1f} s rendering) and {folder / 'summary.json'}",
                      highlight=False)
