"""`featscope layers`: what can be probed."""

import json
import sys
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from ..engine.layout import Layout
from ..engine.probing import LayerInfo, list_layers
from ..errors import FeatscopeError
from ..models.adapters import output_keys
from .app import log
from .loading import Adapted, load_adapted
from .options import OPTIONS, InputOptions, ModelOptions, command

# Declared once in OPTIONS; layers takes these two of the input options.
EmbeddingOption, SeqLenOption = OPTIONS["embedding"][0], OPTIONS["seq_len"][0]


MAX_NOTES = 3  # layers that cannot be read, explained one per line


def _layer_infos(adapted: Adapted) -> list[LayerInfo]:
    loaded = adapted.loaded
    return list_layers(loaded.module, torch.zeros((1, *loaded.input_shape)))


def _reading(info: LayerInfo) -> tuple[Layout | None, str | None]:
    """The layer's layout, or why it cannot be known without --layout."""
    if not info.shape:
        return None, None
    try:
        return info.layout(), None
    except FeatscopeError as error:
        return None, str(error)


@command("layers")
def layers_command(
    model: ModelOptions,
    embedding: EmbeddingOption = None,
    seq_len: SeqLenOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the layers as JSON (name, type, shape, layout, features)")] = False,
) -> None:
    """List the layers that can be probed, with their output shapes and feature counts.

    Token layers read as `tokens P+H×W, C features`: P prefix tokens (class, distillation,
    register tokens) and an H×W grid of patch tokens; channels-last maps as `map H×W
    (channels last)`. Transformer MLP hidden layers are marked: their features are the most
    interpretable (Ghiasi et al. 2022).
    """
    adapted = load_adapted(model, InputOptions(embedding=embedding, seq_len=seq_len))
    loaded = adapted.loaded
    infos = _layer_infos(adapted)
    readings = [_reading(info) for info in infos]
    if as_json:
        rows = []
        for info, (layout, problem) in zip(infos, readings):
            rows.append({"name": info.name, "type": info.kind, "shape": list(info.shape),
                         "features": (layout.features_of(info.shape) if layout else None),
                         "layout": layout.order if layout else None,
                         "prefix_tokens": layout.prefix if layout and layout.tokens else None,
                         "grid": list(layout.grid) if layout and layout.grid else None,
                         "mlp_hidden": info.mlp_hidden, "problem": problem})
        print(json.dumps({"model": loaded.name, "input_shape": list(loaded.input_shape),
                          "layers": rows}, indent=2))
        return
    table = Table(title=f"{loaded.name}: input {tuple(loaded.input_shape)}")
    # Piped to a file, names are never cut: the table takes the width it needs.
    width = None if sys.stdout.isatty() else 10_000
    for column in ("layer", "type", "output shape (no batch)", "features"):
        table.add_column(column, no_wrap=True, overflow="fold")
    for info, (layout, problem) in zip(infos, readings):
        features = layout.describe(info.shape) if layout else ("? (see below)" if problem
                                                               else "-")
        kind = f"{info.kind} (MLP hidden)" if info.mlp_hidden else info.kind
        shape = _shape_text(info)
        table.add_row(info.name or "(model output)", kind, shape, features)
    Console(width=width).print(table)
    problems = list(dict.fromkeys(p for _, p in readings if p))
    for problem in problems[:MAX_NOTES]:
        log(f"note: {problem}")
    if len(problems) > MAX_NOTES:
        log(f"note: {len(problems) - MAX_NOTES} more layer(s) marked ? (see --json)")
    hidden = [info.name for info in infos if info.mlp_hidden]
    if hidden:
        log(f"note: the MLP hidden layers ({hidden[0]} ... {hidden[-1]}) hold a transformer's "
            f"most interpretable features (Ghiasi et al. 2022): e.g. featscope render "
            f"{hidden[len(hidden) // 2]}:0")
    if isinstance(loaded.module, torch.jit.ScriptModule):
        log("note: a TorchScript model runs its layers as compiled code, so only its output "
            "can be probed; save it with torch.export (.pt2), load it as Python code or ONNX "
            "to probe layers")
    if not isinstance(adapted.output, torch.Tensor):
        log(f"note: the model returns a {type(adapted.output).__name__} with outputs "
            f"{', '.join(output_keys(adapted.output))}; give --output KEY to list and target it")


def _shape_text(info: LayerInfo) -> str:
    """The output shape without the batch; a sequence-first one says where its batch was."""
    if info.batch_axis is None:
        return f"{info.shape} (no batch axis)"
    if info.batch_axis == 0:
        return str(info.shape)
    full = list(map(str, info.shape))
    full.insert(info.batch_axis, "B")
    return f"({', '.join(full)})"
