"""Options that say how to load and adapt a model, and which kind of input it takes.

Shared by every command that loads a model; ``load_adapted`` turns them into a
``LoadedModel`` plus the input kind (``featscope.inputs``) to search and write with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from .. import inputs
from ..errors import FeatscopeError
from ..models import LoadedModel, load_model
from ..models.adapters import EmbeddingInput, adapt, output_keys

TrustPickleOption = Annotated[bool, typer.Option(
    "--trust-pickle", help="allow loading a whole pickled model (runs code from the file)")]
InputShapeOption = Annotated[Optional[list[str]], typer.Option(
    "--input-shape", help="input shape without batch, e.g. 3x224x224 or 1x16000; repeat it "
                          "once per input for a model with several inputs")]
OutputOption = Annotated[Optional[str], typer.Option(
    "--output", help="for a model returning a tuple/dict/dataclass: the key, index or field "
                     "to use as its output")]
SearchInputOption = Annotated[int, typer.Option(
    "--search-input", help="for a model with several inputs: the index of the one to search")]
FixedInputsOption = Annotated[Optional[Path], typer.Option(
    "--fixed-inputs", help="the other inputs' values (.npz, or .pt list of tensors); zeros "
                           "if unset")]
EmbeddingOption = Annotated[Optional[str], typer.Option(
    "--embedding", help="token models: the nn.Embedding layer whose output space is searched")]
SeqLenOption = Annotated[Optional[int], typer.Option(
    "--seq-len", help="token models: the number of tokens to search for")]
KindOption = Annotated[Optional[str], typer.Option(
    "--input-kind", help=f"one of {', '.join(inputs.KINDS)} (guessed from the shape if unset)")]
SampleRateOption = Annotated[Optional[int], typer.Option(
    "--sample-rate", help="signals: samples per second; writes a .wav")]
BoundsOption = Annotated[Optional[Path], typer.Option(
    "--bounds", help="vectors: CSV feature,low,high or JSON {feature: [low, high]}")]
VocabOption = Annotated[Optional[Path], typer.Option(
    "--vocab", help="tokens: a text file with one token per line, in id order")]

_SHAPE = re.compile(r"^\d+(x\d+)*$")


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224)."""
    cleaned = text.strip().lower().replace(",", "x").replace(" ", "")
    if not _SHAPE.match(cleaned) or any(int(d) == 0 for d in cleaned.split("x")):
        raise FeatscopeError(f"bad --input-shape {text!r}: give positive sizes joined by 'x', "
                             "without the batch dim, e.g. 3x224x224")
    return tuple(int(d) for d in cleaned.split("x"))


@dataclass
class ModelRequest:
    """Everything the command line says about the model and its input."""

    model: str
    weights: Path | None = None
    trust_pickle: bool = False
    input_shape: list[str] | None = None
    output: str | None = None
    search_input: int = 0
    fixed_inputs: Path | None = None
    embedding: str | None = None
    seq_len: int | None = None
    input_kind: str | None = None
    sample_rate: int | None = None
    bounds: Path | None = None
    vocab: Path | None = None


def load_adapted(request: ModelRequest) -> tuple[LoadedModel, object | None]:
    """The loaded, adapted model and its input kind (``None`` for images)."""
    shapes = [parse_shape(s) for s in request.input_shape or []]
    if not shapes and request.bounds:  # a vector model: one input per bounded feature
        shapes = [(len(inputs.read_bounds(request.bounds).names),)]
    loaded = load_model(request.model, weights=str(request.weights) if request.weights else None,
                        input_shape=shapes[0] if len(shapes) == 1 else None,
                        trust_pickle=request.trust_pickle)
    loaded = adapt(loaded, output=request.output, search_input=request.search_input,
                   input_shapes=shapes, embedding=request.embedding,
                   fixed_inputs=str(request.fixed_inputs) if request.fixed_inputs else None,
                   seq_len=request.seq_len)
    output = check_forward(loaded)
    if request.output is None and (isinstance(output, dict) or is_dataclass(output)):
        raise FeatscopeError(f"the model returns a {type(output).__name__} with outputs "
                             f"{', '.join(output_keys(output))}: choose one with --output KEY")
    return loaded, _input_kind(request, loaded)


def _input_kind(request: ModelRequest, loaded: LoadedModel) -> object | None:
    kind = request.input_kind or ("tokens" if request.embedding else
                                  inputs.infer_kind(loaded.input_shape))
    if kind not in inputs.KINDS and kind != "tensor":
        raise FeatscopeError(f"unknown --input-kind {kind!r}; valid: {', '.join(inputs.KINDS)}")
    _check_kind_options(request, kind)
    _check_kind_shape(kind, loaded.input_shape)
    module = loaded.module
    if kind == "signal":
        return inputs.Signal(request.sample_rate or getattr(module, "sample_rate", None))
    if kind == "volume":
        return inputs.Volume()
    if kind == "vector":
        return inputs.read_bounds(request.bounds) if request.bounds else inputs.Vector(
            getattr(module, "feature_names", None))
    if kind == "tokens":
        if not isinstance(module, EmbeddingInput):
            raise FeatscopeError("--input-kind tokens needs --embedding LAYER (the model's "
                                 "nn.Embedding) and --seq-len T")
        vocab = inputs.read_vocab(request.vocab) if request.vocab else getattr(
            module.model, "vocab", None)
        return inputs.Tokens(module.table, vocab)
    if kind == "tensor":
        return inputs.Raw()
    return None


# The number of input dims (without batch) each kind is defined for; "tensor" takes any.
KIND_DIMS = {"image": 3, "signal": 2, "volume": 4, "vector": 1, "tokens": 2}
KIND_LAYOUT = {"image": "CxHxW", "signal": "CxL", "volume": "CxDxHxW", "vector": "F",
               "tokens": "TxD"}


def _check_kind_shape(kind: str, shape: tuple[int, ...]) -> None:
    if kind in KIND_DIMS and len(shape) != KIND_DIMS[kind]:
        raise FeatscopeError(
            f"a {kind} input has shape {KIND_LAYOUT[kind]} (no batch dim), but this model's "
            f"input is {tuple(shape)}: give --input-shape, or --input-kind tensor for any shape")


def _check_kind_options(request: ModelRequest, kind: str) -> None:
    # An option of another kind would be silently ignored: say so instead.
    misplaced = [option for option, value, wanted in (
        ("--sample-rate", request.sample_rate, "signal"), ("--bounds", request.bounds, "vector"),
        ("--vocab", request.vocab, "tokens")) if value is not None and kind != wanted]
    if misplaced:
        raise FeatscopeError(f"{', '.join(misplaced)} do(es) not apply to a {kind} input; "
                             "check --input-shape / --input-kind")


def check_forward(loaded: LoadedModel) -> object:
    """One forward pass on zeros, so that a wrong input shape fails here with a clear message
    rather than as a deep traceback inside the search. Returns the model's output."""
    example = torch.zeros((1, *loaded.input_shape))
    try:
        with torch.no_grad():
            return loaded.module(example)
    except FeatscopeError:
        raise
    except Exception as error:  # any model code can fail in any way on a wrong input
        first = (str(error).strip().splitlines() or [""])[0][:300]
        raise FeatscopeError(
            f"the model fails on an input of shape {tuple(example.shape)} "
            f"({error.__class__.__name__}: {first}). Give its input shape without the batch "
            "dim with --input-shape, e.g. 3x224x224; for several inputs, one --input-shape per "
            "input") from None


def is_torchscript(loaded: LoadedModel) -> bool:
    return isinstance(loaded.module, torch.jit.ScriptModule)


def check_probeable(loaded: LoadedModel, layers: set[str]) -> None:
    """TorchScript runs its submodules as compiled code, so hooks on them never fire."""
    inner = sorted(name for name in layers if name)
    if is_torchscript(loaded) and inner:
        raise FeatscopeError(
            f"layer(s) {', '.join(inner)} of a TorchScript model cannot be probed: TorchScript "
            "runs its layers as compiled code, past featscope's hooks. Targets on its output "
            "work (logit:K, prob:K); to probe inner layers, load the model as Python code "
            "(--model package.module:factory --weights FILE) or export it to ONNX")
