"""`featscope render`: the maximally activating input for each target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..accentuation import DEFAULT_CLOSENESS
from ..diversity import DEFAULT_WEIGHT
from ..errors import FeatscopeError
from ..images import load_image
from ..models import DEFAULT_MODEL
from ..outputs import file_stems, prepare_dir, save_png, write_json
from ..parameterizations import IMAGE_PARAMETERIZATIONS
from ..render import PRESETS, recipe, render
from ..spectrum import spectrum_from_folder
from ..transparency import with_alpha
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
    param: Annotated[Optional[str], typer.Option(
        help=f"{', '.join(IMAGE_PARAMETERIZATIONS)} (preset's if unset)")] = None,
    pool: Annotated[str, typer.Option(help="reduce a feature map by mean or max")] = "mean",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: DeviceOption = "auto",
    batch_size: Annotated[Optional[int], typer.Option(help="targets per batch (all if unset)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    from_image: Annotated[Optional[Path], typer.Option(
        "--from-image", help="accentuate: start from this image and stay close to it")] = None,
    closeness: Annotated[Optional[float], typer.Option(
        help=f"weight keeping --from-image close ({DEFAULT_CLOSENESS:g} if unset)")] = None,
    copies: Annotated[int, typer.Option(help="diverse images per target")] = 1,
    diversity: Annotated[Optional[float], typer.Option(
        help=f"weight pushing the copies apart ({DEFAULT_WEIGHT:g} with --copies > 1)")] = None,
    warmup: Annotated[Optional[int], typer.Option(
        help="first steps with leaky ReLU gradients, to revive dead units")] = None,
    crops: Annotated[Optional[int], typer.Option(help="random crop views per step (MACO)")] = None,
    spectrum_from: Annotated[Optional[Path], typer.Option(
        "--spectrum-from", help="folder of images whose spectrum MACO keeps (--param maco)")] = None,
) -> None:
    """Render the input that maximizes each TARGET; write PNGs and summary.json to --out."""
    if param is not None and param not in IMAGE_PARAMETERIZATIONS:
        raise FeatscopeError(f"unknown --param {param!r}; valid: {', '.join(IMAGE_PARAMETERIZATIONS)}")
    if pool not in ("mean", "max"):
        raise FeatscopeError(f"unknown --pool {pool!r}; valid: mean, max")
    if copies < 1:
        raise FeatscopeError(f"--copies must be at least 1 (got {copies})")
    extra = {"warmup": warmup, "crops": crops,
             "diversity": diversity if diversity is not None or copies == 1 else DEFAULT_WEIGHT,
             "closeness": closeness if closeness is not None or from_image is None
             else DEFAULT_CLOSENESS}
    if from_image is not None and param is None:
        param = "pixel"  # the start image is matched exactly in pixel space
    chosen = recipe(preset, steps=steps, size=size, lr=lr, param=param, **extra)
    loaded = load(model, weights)
    objectives = [parse_target(t, loaded.module, loaded.class_names, pool=pool,
                               border=chosen.channel_border) for t in targets]
    targets = [t for t in targets for _ in range(copies)]
    objectives = [o for o in objectives for _ in range(copies)]
    start = None
    if from_image is not None:
        start = load_image(from_image, "L" if loaded.input_shape[0] == 1 else "RGB")
    spectrum = spectrum_from_folder(spectrum_from) if spectrum_from is not None else None
    folder = prepare_dir(out)
    progress = not quiet and sys.stderr.isatty()
    result = render(loaded, objectives, preset=preset, steps=steps, size=size, lr=lr,
                    param=param, seed=seed, device=device, batch_size=batch_size,
                    progress=progress, start=start, spectrum=spectrum, **extra)
    alphas = with_alpha(result.images, result.transparency) \
        if result.transparency is not None else None
    per_target = result.seconds / len(targets)
    rows = []
    never = result.never_activated or [False] * len(targets)
    for i, (target, stem) in enumerate(zip(targets, file_stems(targets))):
        image = result.images[i]
        path = save_png(image, folder / f"{stem}.png") if result.images.dim() == 4 else None
        row = {"target": target, "image": str(path) if path else None,
               "objective_initial": float(result.initial[i]), "objective": float(result.final[i]),
               "seconds": per_target, "zero_gradient": result.zero_gradient[i],
               "never_activated": never[i]}
        if alphas is not None:
            row["transparency"] = str(save_png(alphas[i], folder / f"{stem}-alpha.png"))
        rows.append(row)
        if row["zero_gradient"] or row["never_activated"]:
            console.print(f"[yellow]warning[/]: {target}: the unit never activated (its "
                          "objective never rose above its start); try --warmup 32")
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


