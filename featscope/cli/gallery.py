"""`featscope gallery`: a browsable static site of layers, units and dataset examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..gallery import LayerEntry, UnitEntry, write_gallery
from ..models import DEFAULT_MODEL
from ..outputs import prepare_dir, save_png
from ..probing import MODEL_OUTPUT
from ..render import AUTO
from ..sheets import overview
from ..targets import parse_target
from .classes import class_objectives
from .common import DeviceOption, ModelOption, WeightsOption, app, console, load
from .overview import CountOption, LayersOption, choose_layers
from .units import (BatchOption, ImagesOption, Job, LrOption, OutOption, ParamOption,
                    PoolOption, PresetOption, QuietOption, SeedOption, SizeOption, StepsOption,
                    TopKOption, dataset_examples, layer_features, layer_infos, pictures,
                    render_units, write_results)

OVERVIEW_UNITS = 8  # units per layer in the index's overview figure


@app.command("gallery")
def gallery_command(
    out: OutOption,
    layers: LayersOption = None,
    count: CountOption = 5,
    per_layer: Annotated[int, typer.Option(help="units per layer (the first N)")] = 8,
    every: Annotated[bool, typer.Option("--all", help="every unit of each layer")] = False,
    classes: Annotated[Optional[str], typer.Option(
        help="also render these classes, e.g. 1,207,goldfinch")] = None,
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
    """Write a browsable static HTML gallery of layers and units (open OUT/index.html).

    An index of layers, a page per layer with its unit grid, a page per unit with its
    objective curve, dataset examples (--images) and the command that reproduces it. No
    server or network needed. Running the same command again resumes.
    """
    job = Job(model=model, weights=weights, preset=preset, steps=steps, size=size, lr=lr,
              param=param, pool=pool, seed=seed, device=device, batch_size=batch_size,
              images=images, top_k=top_k, quiet=quiet)
    job.check()
    loaded = load(model, weights)
    infos = layer_infos(loaded)
    chosen = choose_layers(loaded, layers, count, per_layer)
    if every:
        chosen = {layer: list(range(layer_features(loaded, layer, infos))) for layer in chosen}
    border = job.recipe().channel_border
    objectives = [parse_target(f"{layer}:{k}", loaded.module, loaded.class_names, pool=pool,
                               border=border) for layer, units in chosen.items() for k in units]
    sections = [(layer, [str(k) for k in units]) for layer, units in chosen.items()]
    if classes:
        wanted = class_objectives(loaded, classes)
        objectives += wanted
        sections.append((MODEL_OUTPUT, [o.name.split(":", 1)[1] for o in wanted]))
    folder = prepare_dir(out)
    rendered = render_units(job, loaded, objectives, folder)
    examples = dataset_examples(job, loaded, objectives, folder)
    entries, figure_rows, start = [], [], 0
    visuals = pictures(rendered.units)
    for layer, labels in sections:
        done = rendered.units[start:start + len(labels)]
        units = [UnitEntry(label, unit, job.command(unit.batch),
                           examples.by_target[unit.target] if examples else [])
                 for label, unit in zip(labels, done)]
        info = infos.get(layer)
        described = "class logits" if layer == MODEL_OUTPUT else \
            f"{info.kind}, output {tuple(info.shape)}"
        entries.append(LayerEntry(layer, described, units))
        if layer != MODEL_OUTPUT:
            shown = min(len(labels), OVERVIEW_UNITS)
            figure_rows.append((layer, visuals[start:start + shown],
                                [f"#{l} {u.objective:.3g}" for l, u in zip(labels, done)]))
        start += len(labels)
    figures = [save_png(overview(figure_rows), folder / "overview.png")] if figure_rows else []
    write_results(folder, job, loaded, rendered, examples, {"layers": chosen}, copies=False)
    index = write_gallery(folder, entries, title=f"featscope gallery: {loaded.name}",
                          settings=job.cache_settings(loaded),
                          input_size=tuple(loaded.input_shape[1:]), figures=figures)
    if not quiet:
        console.print(f"wrote the gallery: {Path(index).resolve().as_uri()}", highlight=False)
