"""`featscope layers`: what can be probed."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table

from ..models import DEFAULT_MODEL
from ..probing import list_layers
from .common import ModelOption, WeightsOption, app, load


@app.command()
def layers(model: ModelOption = DEFAULT_MODEL, weights: WeightsOption = None) -> None:
    """List the layers that can be probed, with their output shapes and feature counts."""
    loaded = load(model, weights)
    example = torch.zeros((1, *loaded.input_shape))
    table = Table(title=f"{loaded.name}: input {tuple(loaded.input_shape)}")
    table.add_column("layer", no_wrap=True)
    for column in ("type", "output shape (no batch)", "features"):
        table.add_column(column, no_wrap=True)
    for info in list_layers(loaded.module, example):
        table.add_row(info.name or "(model output)", info.kind, str(info.shape),
                      str(info.features() if info.shape else "-"))
    Console().print(table)


