"""`featscope layers`: what can be probed."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table

from ..models import DEFAULT_MODEL, LoadedModel
from ..probing import MODEL_OUTPUT, LayerInfo, first_tensor, list_layers
from .common import ModelOption, WeightsOption, app, console
from .model_options import (EmbeddingOption, FixedInputsOption, InputShapeOption, ModelRequest,
                            OutputOption, SearchInputOption, SeqLenOption, TrustPickleOption,
                            is_torchscript, load_adapted)


@app.command()
def layers(model: ModelOption = DEFAULT_MODEL, weights: WeightsOption = None,
           trust_pickle: TrustPickleOption = False, input_shape: InputShapeOption = None,
           output: OutputOption = None, search_input: SearchInputOption = 0,
           fixed_inputs: FixedInputsOption = None, embedding: EmbeddingOption = None,
           seq_len: SeqLenOption = None) -> None:
    """List the layers that can be probed, with their output shapes and feature counts."""
    loaded, _ = load_adapted(ModelRequest(
        model, weights, trust_pickle=trust_pickle, input_shape=input_shape, output=output,
        search_input=search_input, fixed_inputs=fixed_inputs, embedding=embedding,
        seq_len=seq_len))
    example = torch.zeros((1, *loaded.input_shape))
    table = Table(title=f"{loaded.name}: input {tuple(loaded.input_shape)}")
    table.add_column("layer", no_wrap=True)
    for column in ("type", "output shape (no batch)", "features"):
        table.add_column(column, no_wrap=True)
    for info in _layers(loaded, example):
        table.add_row(info.name or "(model output)", info.kind, str(info.shape),
                      str(info.features() if info.shape else "-"))
    Console().print(table)
    if is_torchscript(loaded):
        console.print("note: a TorchScript model runs its layers as compiled code, so only its "
                      "output can be probed; load it as Python code or ONNX to probe layers")


def _layers(loaded: LoadedModel, example: torch.Tensor) -> list[LayerInfo]:
    if not is_torchscript(loaded):
        return list_layers(loaded.module, example)
    # TorchScript refuses hooks on its layers: only the output can be read.
    with torch.no_grad():
        output = first_tensor(loaded.module(example))
    return [LayerInfo(MODEL_OUTPUT, "output", tuple(output.shape[1:]))]
