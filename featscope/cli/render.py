"""`featscope render`: the maximally activating input for each target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FeatscopeError
from ..models import DEFAULT_MODEL
from ..outputs import file_stems, prepare_dir, save_png, write_json
from ..render import PRESETS, recipe, render
from ..targets import SYNTAX, parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console, load


@app.command("render")
def render_command(
    targets: Annotated[list[str], typer.Argument(help=f"what to maximize: {SYNTAX}")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    preset: Annotated[str, typer.Option(help=f"recipe: {', '.join(PRESETS)}")] = "featscope",
    steps: Annotated[Optional[int], typer.Option(help="search steps (preset's if unset)")] = None,
    size: Annotated[Optional[int], typer.Option(help="image side in px (preset's if unset)")] = None,
    lr: Annotated[Optional[float], typer.Option(help="learning rate (preset's if unset)")] = None,
    param: Annotated[Optional[str], typer.Option(help="pixel or fourier (preset's if unset)")] = None,
    pool: Annotated[str, typer.Option(help="reduce a feature map by mean or max")] = "mean",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: DeviceOption = "auto",
    batch_size: Annotated[Optional[int], typer.Option(help="targets per batch (all if unset)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Render the input that maximizes each TARGET; write PNGs and summary.json to --out."""
    if param is not None and param not in ("pixel", "fourier"):
        raise FeatscopeError(f"unknown --param {param!r}; valid: pixel, fourier")
    if pool not in ("mean", "max"):
        raise FeatscopeError(f"unknown --pool {pool!r}; valid: mean, max")
    chosen = recipe(preset, steps=steps, size=size, lr=lr, param=param)
    loaded = load(model, weights)
    objectives = [parse_target(t, loaded.module, loaded.class_names, pool=pool,
                               border=chosen.channel_border) for t in targets]
    folder = prepare_dir(out)
    progress = not quiet and sys.stderr.isatty()
    result = render(loaded, objectives, preset=preset, steps=steps, size=size, lr=lr,
                    param=param, seed=seed, device=device, batch_size=batch_size,
                    progress=progress)
    per_target = result.seconds / len(targets)
    rows = []
    for target, stem, image, first, last, dead in zip(targets, file_stems(targets), result.images,
                                                      result.initial, result.final,
                                                      result.zero_gradient):
        path = save_png(image, folder / f"{stem}.png") if result.images.dim() == 4 else None
        rows.append({"target": target, "image": str(path) if path else None,
                     "objective_initial": float(first), "objective": float(last),
                     "seconds": per_target, "zero_gradient": dead})
        if dead:
            console.print(f"[yellow]warning[/]: {target}: the input gradient was zero at every "
                          "step; the unit never activated or does not depend on the input")
    summary = {"model": loaded.name, "device": result.device,
               "settings": {**result.settings, "pool": pool, "batch_size": batch_size,
                            "total_seconds": result.seconds},
               "results": rows}
    write_json(summary, folder / "summary.json")
    if not quiet:
        for row in rows:
            console.print(f"{row['target']}: {row['objective_initial']:.3g} -> "
                          f"{row['objective']:.3g}  {row['image']}")
        console.print(f"wrote {folder / 'summary.json'} ({result.seconds:.1f} s on {result.device})")


