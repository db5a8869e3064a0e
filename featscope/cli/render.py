"""`featscope render`: the maximally activating input for each target."""

from __future__ import annotations

from typing import Annotated

import typer

from ..objectives.targets import SYNTAX
from .app import log
from .options import (
    AccentOptions,
    DirectionOptions,
    InputOptions,
    ModelOptions,
    OutputOptions,
    RenderOptions,
    command,
)
from .session import Job, value_text


@command("render")
def render_command(
    targets: Annotated[list[str], typer.Argument(
        help=f"what to maximize: {SYNTAX}; with --direction/--toward-image: LAYER or output")],
    model: ModelOptions, given: InputOptions, rendering: RenderOptions, accent: AccentOptions,
    directions: DirectionOptions, output: OutputOptions,
) -> None:
    """Render the input that maximizes each TARGET; write its files and summary.json to --out.

    Images are written as PNG (with NAME-alpha.png when the recipe keeps a transparency map);
    other inputs by kind (signal: .npy, .wav, plot; volume: .npy, montage; vector: CSV/JSON;
    tokens: nearest tokens). Units are saved as their batch finishes; running the same
    command again reuses every unit already rendered with the same settings.
    """
    job = Job("render", model, rendering, output, accent, given, directions=directions)
    if directions.given:
        objectives, labels = job.direction_objectives(targets)
    else:
        objectives, labels = job.objectives(targets), list(targets)
    objectives, labels = job.with_copies(objectives, labels)
    units = job.render(objectives, labels)
    if not output.quiet:
        for unit in units:
            row = job.rows[unit.label]
            files = ", ".join(row["files"].values()) or unit.error
            log(f"{unit.label}: {value_text(unit.objective_initial)} -> "
                f"{value_text(unit.objective)}  {files}")
        log(f"wrote {job.folder / 'summary.json'} ({job.seconds:.1f} s rendering on "
            f"{job.header()['device']})")
    job.finish()
