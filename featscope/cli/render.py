"""`featscope render`: the maximally activating input for each target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..accentuation import DEFAULT_CLOSENESS
from ..diversity import DEFAULT_WEIGHT
from ..errors import FeatscopeError
from ..hardening import render_units
from ..images import load_image
from ..models import DEFAULT_MODEL
from ..outputs import prepare_dir
from ..parameterizations import IMAGE_PARAMETERIZATIONS
from ..render import AUTO, recipe
from ..spectrum import spectrum_from_folder
from ..targets import SYNTAX, parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console
from .model_options import (BoundsOption, EmbeddingOption, FixedInputsOption, InputShapeOption,
                            KindOption, ModelRequest, OutputOption, SampleRateOption,
                            SearchInputOption, SeqLenOption, TrustPickleOption, VocabOption,
                            check_probeable, load_adapted)
from .unit_writer import UnitWriter, finished_rows
from .units import PresetOption


@app.command("render")
def render_command(
    targets: Annotated[list[str], typer.Argument(help=f"what to maximize: {SYNTAX}")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    preset: PresetOption = AUTO,
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
    trust_pickle: TrustPickleOption = False,
    input_shape: InputShapeOption = None,
    output: OutputOption = None,
    search_input: SearchInputOption = 0,
    fixed_inputs: FixedInputsOption = None,
    embedding: EmbeddingOption = None,
    seq_len: SeqLenOption = None,
    input_kind: KindOption = None,
    sample_rate: SampleRateOption = None,
    bounds: BoundsOption = None,
    vocab: VocabOption = None,
    precision: Annotated[str, typer.Option(
        help="float32, or bfloat16/float16 autocast for the model (fast on GPUs)")] = "float32",
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
    resume: Annotated[bool, typer.Option(
        "--resume", help="skip the targets already finished in --out (files intact)")] = False,
) -> None:
    """Render the input that maximizes each TARGET; write its files and summary.json to --out.

    Images are written as PNG (with NAME-alpha.png when the recipe keeps a transparency map);
    other inputs by kind (signal: .npy, .wav, plot; volume: .npy, montage; vector: CSV/JSON;
    tokens: nearest tokens). Units are saved as their batch finishes, so an interrupted run
    keeps them and --resume continues it.
    """
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
    loaded, kind = load_adapted(ModelRequest(
        model, weights, trust_pickle=trust_pickle, input_shape=input_shape, output=output,
        search_input=search_input, fixed_inputs=fixed_inputs, embedding=embedding,
        seq_len=seq_len, input_kind=input_kind, sample_rate=sample_rate, bounds=bounds,
        vocab=vocab))
    objectives = [parse_target(t, loaded.module, loaded.class_names, pool=pool,
                               border=chosen.channel_border) for t in targets]
    check_probeable(loaded, set().union(*(o.layers for o in objectives)))
    if copies > 1:  # each copy is its own unit, with its own files
        targets = [f"{t}#{j}" for t in targets for j in range(copies)]
        objectives = [o for o in objectives for _ in range(copies)]
    start = None
    if from_image is not None:
        start = load_image(from_image, "L" if loaded.input_shape[0] == 1 else "RGB")
    spectrum = spectrum_from_folder(spectrum_from) if spectrum_from is not None else None
    folder = prepare_dir(out)
    done = finished_rows(folder, targets) if resume else {}
    header = {"model": loaded.name, "device": None,
              "settings": {"pool": pool, "batch_size": batch_size, "seed": seed,
                           "precision": precision}}
    writer = UnitWriter(folder, loaded, kind, targets, objectives, done, header)
    todo = [o for t, o in zip(targets, objectives) if t not in done]
    progress = not quiet and sys.stderr.isatty()
    try:
        if todo:
            render_units(loaded, todo, preset=preset, steps=steps, size=size, lr=lr,
                         param=param, seed=seed, device=device, batch_size=batch_size,
                         progress=progress, on_chunk=writer.write, precision=precision,
                         parameterize=getattr(kind, "parameterize", None), start=start,
                         spectrum=spectrum, **extra)
        else:
            writer.flush()
    except KeyboardInterrupt:
        console.print(f"interrupted: {writer.finished} of {len(targets)} target(s) finished and "
                      f"saved in {folder}; to continue, run the same command with --resume")
        sys.exit(130)
    _report(writer, folder, quiet)


def _report(writer: UnitWriter, folder: Path, quiet: bool) -> None:
    for target in writer.targets:
        row = writer.rows[target]
        if row["zero_gradient"] or row.get("never_activated"):
            console.print(f"[yellow]warning[/]: {target}: the unit never activated (its "
                          "objective never rose above its start); try --warmup 32")
        if "nan_retries_lr" in row:
            console.print(f"[yellow]note[/]: {target}: NaN/Inf during the search; retried with "
                          f"learning rate {row['nan_retries_lr'][-1]:g}")
        if not quiet:
            files = ", ".join(row["files"].values())
            console.print(f"{target}: {row['objective_initial']:.3g} -> "
                          f"{row['objective']:.3g}  {files}")
    if not quiet:
        console.print(f"wrote {folder / 'summary.json'} ({writer.seconds:.1f} s on "
                      f"{writer.header['device']})")
