"""`featscope overview`: a few units of layers from low to high, a row per layer."""

from __future__ import annotations

from ..drawing.grid import overview
from ..files.writing import save_png
from ..views.figures import examples_figure
from ..views.selection import choose_layers
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


@command("overview")
def overview_command(model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
                     which: LayerOptions, examples: ExamplesOptions) -> None:
    """Render a few units of layers from low to high, a row per layer.

    Writes overview.png, one PNG per unit and summary.json to --out. Running the same
    command again reuses the units already rendered.
    """
    job = Job("overview", model, rendering, output, examples=examples)
    chosen = choose_layers(job.loaded, which.layers, which.count, which.per_layer,
                           order=rendering.layout, prefix=rendering.prefix_tokens)
    objectives = job.objectives([f"{layer}:{k}" for layer, units in chosen.items()
                                 for k in units])
    stored = job.render(objectives)
    found = job.dataset_examples(objectives)
    visuals, rows, start = job.pictures(stored), [], 0
    for layer, units in chosen.items():
        done = stored[start:start + len(units)]
        labels = [f"#{k} {value_text(u.objective)}" + (
            f" {r:.2g}x" if found and (r := found.ratio(u.target, u.objective or 0.0)) else "")
            for k, u in zip(units, done)]
        rows.append((layer, visuals[start:start + len(units)], labels))
        start += len(units)
    figure = save_png(overview(rows), job.folder / "overview.png")
    extra = {"layers": chosen, "overview": figure.name}
    if found is not None:
        extra["examples_figure"] = save_png(examples_figure(
            [u.target for u in stored], visuals, [u.objective for u in stored], found,
            [u.target for u in stored], tuple(job.loaded.input_shape[1:])),
            job.folder / "examples.png").name
    job.write_summary(extra)
    if not output.quiet:
        log(f"wrote {figure} ({len(chosen)} layers: {', '.join(chosen)}) and "
            f"{job.folder / 'summary.json'}")
    job.finish()
