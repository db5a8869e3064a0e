"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..models import DEFAULT_MODEL, LoadedModel, load_model

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="See what a neural network has learned, by gradient search on its inputs.")
console = Console(stderr=True)

ModelOption = Annotated[str, typer.Option(
    "--model", "-m", help=f"{DEFAULT_MODEL}, torchvision:NAME, a TorchScript file, or "
                          "package.module:factory")]
WeightsOption = Annotated[Optional[Path], typer.Option(
    "--weights", help="a local state dict (.pth or .safetensors) for the model")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps")]


def load(model: str, weights: Path | None) -> LoadedModel:
    return load_model(model, weights=str(weights) if weights else None)
