"""`featscope layers`: what can be probed."""

import json
import sys
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from ..engine.probing import MODEL_OUTPUT, LayerInfo, first_tensor, list_layers
from ..models.adapters import output_keys
from .app import log
from .loading import Adapted, is_torchscript, load_adapted
from .options import OPTIONS, InputOptions, ModelOptions, command

# Declared once in OPTIONS; layers takes these two of the input options.
EmbeddingOption, SeqLenOption = OPTIONS["embedding"][0], OPTIONS["seq_len"][0]


def _layer_infos(adapted: Adapted) -> list[LayerInfo]:
    loaded = adapted.loaded
    example = torch.zeros((1, *loaded.input_shape))
    if not is_torchscript(loaded):
        return list_layers(loaded.module, example)
    # TorchScript refuses hooks on its layers: only the output can be read.
    with torch.no_grad():
        output = first_tensor(loaded.module(example))
    return [LayerInfo(MODEL_OUTPUT, "output", tuple(output.shape[1:]))]


@command("layers")
def layers_command(
    model: ModelOptions,
    embedding: EmbeddingOption = None,
    seq_len: SeqLenOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the layers as JSON (name, type, shape, features)")] = False,
) -> None:
    """List the layers that can be probed, with their output shapes and feature counts."""
    adapted = load_adapted(model, InputOptions(embedding=embedding, seq_len=seq_len))
    loaded = adapted.loaded
    infos = _layer_infos(adapted)
    if as_json:
        print(json.dumps({"model": loaded.name, "input_shape": list(loaded.input_shape),
                          "layers": [{"name": i.name, "type": i.kind, "shape": list(i.shape),
                                      "features": i.features() if i.shape else None}
                                     for i in infos]}, indent=2))
        return
    table = Table(title=f"{loaded.name}: input {tuple(loaded.input_shape)}")
    # Piped to a file, names are never cut: the table takes the width it needs.
    width = None if sys.stdout.isatty() else 10_000
    for column in ("layer", "type", "output shape (no batch)", "features"):
        table.add_column(column, no_wrap=True, overflow="fold")
    for info in infos:
        table.add_row(info.name or "(model output)", info.kind, str(info.shape),
                      str(info.features() if info.shape else "-"))
    Console(width=width).print(table)
    if is_torchscript(loaded):
        log("note: a TorchScript model runs its layers as compiled code, so only its output "
            "can be probed; save it with torch.export (.pt2), load it as Python code or ONNX "
            "to probe layers")
    if not isinstance(adapted.output, torch.Tensor):
        log(f"note: the model returns a {type(adapted.output).__name__} with outputs "
            f"{', '.join(output_keys(adapted.output))}; give --output KEY to list and target it")
