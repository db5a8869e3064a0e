"""`featscope overview`: a few units of layers from low to high, a row per layer."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import FeatscopeError
from ..models import DEFAULT_MODEL, LoadedModel
from ..outputs import prepare_dir, save_png
from ..render import AUTO
from ..sheets import overview, spread_layers
from ..targets import parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console, load
from .units import (BatchOption, ImagesOption, Job, LrOption, OutOption, ParamOption,
                    PoolOption, PresetOption, QuietOption, SeedOption, SizeOption, StepsOption,
                    TopKOption, dataset_examples, examples_figure, layer_features, layer_infos,
                    pictures, ratio, render_units, write_results)

LayersOption = Annotated[Optional[str], typer.Option(
    help="comma-separated layers, low to high (default: spread evenly over the depth)")]
CountOption = Annotated[int, typer.Option(
    "--count", help="how many layers to pick when --layers is not given")]


def choose_layers(loaded: LoadedModel, layers: str | None, count: int,
                  per_layer: int) -> dict[str, list[int]]:
    """{layer: its first ``per_layer`` units}, for the given or evenly spread layers."""
    if per_layer < 1:
        raise FeatscopeError(f"--per-layer must be at least 1 (got {per_layer})")
    infos = layer_infos(loaded)
    if layers:
        names = [name.strip() for name in layers.split(",") if name.strip()]
    else:
        if count < 1:
            raise FeatscopeError(f"--count must be at least 1 (got {count})")
        names = spread_layers(list(infos.values()), count)
    return {name: list(range(min(per_layer, layer_features(loaded, name, infos))))
            for name in names}


@app.command("overview")
def overview_command(
    out: OutOption,
    layers: LayersOption = None,
    count: CountOption = 5,
    per_layer: Annotated[int, typer.Option(help="units shown per layer (the first N)")] = 8,
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
    """Render a few units of layers from low to high, a row per layer.

    Writes overview.png, one PNG per unit and summary.json to --out. Running the same
    command again resumes.
    """
    job = Job(model=model, weights=weights, preset=preset, steps=steps, size=size, lr=lr,
              param=param, pool=pool, seed=seed, device=device, batch_size=batch_size,
              images=images, top_k=top_k, quiet=quiet)
    job.check()
    loaded = load(model, weights)
    chosen = choose_layers(loaded, layers, count, per_layer)
    border = job.recipe().channel_border
    objectives = [parse_target(f"{layer}:{k}", loaded.module, loaded.class_names, pool=pool,
                               border=border) for layer, units in chosen.items() for k in units]
    folder = prepare_dir(out)
    rendered = render_units(job, loaded, objectives, folder)
    examples = dataset_examples(job, loaded, objectives, folder)
    visuals, rows, start = pictures(rendered.units), [], 0
    for layer, units in chosen.items():
        done = rendered.units[start:start + len(units)]
        labels = [f"#{k} {u.objective:.3g}" + (f" {r:.2g}x" if (r := ratio(u, examples)) else "")
                  for k, u in zip(units, done)]
        rows.append((layer, visuals[start:start + len(units)], labels))
        start += len(units)
    figure = save_png(overview(rows), folder / "overview.png")
    extra = {"layers": chosen, "overview": str(figure)}
    if examples is not None:
        names = [u.target for u in rendered.units]
        extra["examples_figure"] = str(save_png(
            examples_figure(rendered, examples, names, tuple(loaded.input_shape[1:])),
            folder / "examples.png"))
    write_results(folder, job, loaded, rendered, examples, extra)
    if not quiet:
        console.print(f"wrote {figure} ({len(chosen)} layers: {', '.join(chosen)}) and "
                      f"{folder / 'summary.json'}", highlight=False)
