"""`featscope render`: the maximally activating input for each target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FeatscopeError
from ..hardening import render_units
from ..models import DEFAULT_MODEL
from ..outputs import prepare_dir
from ..render import PRESETS, recipe
from ..targets import SYNTAX, parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console
from .model_options import (BoundsOption, EmbeddingOption, FixedInputsOption, InputShapeOption,
                            KindOption, ModelRequest, OutputOption, SampleRateOption,
                            SearchInputOption, SeqLenOption, TrustPickleOption, VocabOption,
                            check_probeable, load_adapted)
from .unit_writer import UnitWriter, finished_rows


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
    resume: Annotated[bool, typer.Option(
        "--resume", help="skip the targets already finished in --out (files intact)")] = False,
) -> None:
    """Render the input that maximizes each TARGET; write its files and summary.json to --out.

    Images are written as PNG; other inputs by kind (signal: .npy, .wav, plot; volume: .npy,
    montage; vector: CSV/JSON; tokens: nearest tokens). Units are saved as their batch
    finishes, so an interrupted run keeps them and --resume continues it.
    """
    if param is not None and param not in ("pixel", "fourier"):
        raise FeatscopeError(f"unknown --param {param!r}; valid: pixel, fourier")
    if pool not in ("mean", "max"):
        raise FeatscopeError(f"unknown --pool {pool!r}; valid: mean, max")
    chosen = recipe(preset, steps=steps, size=size, lr=lr, param=param)
    loaded, kind = load_adapted(ModelRequest(
        model, weights, trust_pickle=trust_pickle, input_shape=input_shape, output=output,
        search_input=search_input, fixed_inputs=fixed_inputs, embedding=embedding,
        seq_len=seq_len, input_kind=input_kind, sample_rate=sample_rate, bounds=bounds,
        vocab=vocab))
    objectives = [parse_target(t, loaded.module, loaded.class_names, pool=pool,
                               border=chosen.channel_border) for t in targets]
    check_probeable(loaded, set().union(*(o.layers for o in objectives)))
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
                         parameterize=getattr(kind, "parameterize", None))
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
        if row["zero_gradient"]:
            console.print(f"[yellow]warning[/]: {target}: the input gradient was zero at every "
                          "step; the unit never activated or does not depend on the input")
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
