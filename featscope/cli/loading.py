"""From the model and input options to a loaded, adapted model and its input kind.

``load_adapted`` loads the model (``featscope.models``), wraps it for several inputs, one
of several outputs or token embeddings, checks it runs on an input of its shape, and picks
the input kind to search and write with. What it decided that a user should know
(normalization used, default bounds, an unbounded search) comes back as notes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import torch

from .. import inputs
from ..engine.probing import MODEL_OUTPUT
from ..errors import FeatscopeError
from ..inputs.base import KIND_DIMS, KIND_LAYOUT, InputKind
from ..models import LoadedModel, load_model
from ..models.adapters import EmbeddingInput, adapt, output_keys
from .options import InputOptions, ModelOptions

_SHAPE = re.compile(r"^\d+(x\d+)*$")


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224)."""
    cleaned = text.strip().lower().replace(",", "x").replace(" ", "")
    if not _SHAPE.match(cleaned) or any(int(d) == 0 for d in cleaned.split("x")):
        raise FeatscopeError(f"bad --input-shape {text!r}: give positive sizes joined by 'x', "
                             "without the batch dim, e.g. 3x224x224")
    return tuple(int(d) for d in cleaned.split("x"))


@dataclass
class Adapted:
    """A model ready to search: the module, its input kind, and what a user should know."""

    loaded: LoadedModel
    kind: InputKind
    output: object  # the model's output on zeros (a tensor, or a tuple/dict/dataclass)
    notes: list[str] = field(default_factory=list)

    def check_targets(self, layers: set[str]) -> None:
        """Whether the targets' layers can be read from this model."""
        if MODEL_OUTPUT in layers and not isinstance(self.output, torch.Tensor):
            keys = output_keys(self.output)
            raise FeatscopeError(f"the model returns a {type(self.output).__name__} with outputs "
                                 f"{', '.join(keys)}: choose one with --output KEY to target it")
        inner = sorted(name for name in layers if name != MODEL_OUTPUT)
        if is_torchscript(self.loaded) and inner:
            raise FeatscopeError(
                f"layer(s) {', '.join(inner)} of a TorchScript model cannot be probed: "
                "TorchScript runs its layers as compiled code, past featscope's hooks. Targets "
                "on its output work (logit:K, prob:K); to probe inner layers, save it with "
                "torch.export (.pt2), load it as Python code (--model package.module:factory "
                "--weights FILE) or export it to ONNX")


def load_adapted(model: ModelOptions, given: InputOptions | None = None) -> Adapted:
    """The loaded, adapted model and its input kind (see the module docstring)."""
    given = given or InputOptions()
    shapes = [parse_shape(s) for s in model.input_shape or []]
    bounds = inputs.read_bounds(given.bounds) if given.bounds else None
    loaded = load_model(model.model, weights=str(model.weights) if model.weights else None,
                        input_shape=shapes[0] if len(shapes) == 1 else None,
                        trust_pickle=model.trust_pickle, normalize=model.normalize,
                        random_weights=model.random_weights)
    notes = list(loaded.notes)
    if loaded.input_shape_guessed and not shapes:
        if bounds is not None:  # a model that does not say its input: one feature per bound
            shapes = [(len(bounds.names),)]
        else:
            notes.append(f"the model does not say its input shape: assuming "
                         f"{'x'.join(map(str, loaded.input_shape))} (give --input-shape "
                         "otherwise)")
    loaded = adapt(loaded, output=model.output, search_input=model.search_input,
                   input_shapes=shapes, embedding=given.embedding,
                   fixed_inputs=str(model.fixed_inputs) if model.fixed_inputs else None,
                   seq_len=given.seq_len)
    output = check_forward(loaded)
    if loaded.is_image:
        notes.append(f"input normalization: {loaded.normalization_source}")
    kind = _input_kind(given, loaded, bounds, notes)
    return Adapted(loaded, kind, output, notes)


def _input_kind(given: InputOptions, loaded: LoadedModel, bounds: inputs.Vector | None,
                notes: list[str]) -> InputKind:
    name = given.input_kind or ("tokens" if given.embedding else
                                inputs.infer_kind(loaded.input_shape))
    if name not in inputs.KINDS:
        raise FeatscopeError(f"unknown --input-kind {name!r}; valid: {', '.join(inputs.KINDS)}")
    _check_kind_options(given, name)
    _check_kind_shape(name, loaded.input_shape)
    module = loaded.module
    if name == "image":
        return inputs.Image()
    if name == "signal":
        return inputs.Signal(given.sample_rate or getattr(module, "sample_rate", None))
    if name == "volume":
        return inputs.Volume(given.max_norm)
    if name == "vector":
        names = getattr(module, "feature_names", None)
        if bounds is None:
            if given.max_norm is None:
                notes.append("a vector input without --bounds is unbounded: the search can make "
                             "it as large as it likes; give --bounds FILE (per-feature ranges) "
                             "or --max-norm R")
                return inputs.Vector(names)
            return inputs.Raw(given.max_norm)
        kind, note = bounds.for_model(loaded.input_shape[0], names)
        if note:
            notes.append(note)
        return kind
    if name == "tokens":
        if not isinstance(module, EmbeddingInput):
            raise FeatscopeError("--input-kind tokens needs --embedding LAYER (the model's "
                                 "nn.Embedding) and --seq-len T")
        vocab = inputs.read_vocab(given.vocab) if given.vocab else getattr(
            module.model, "vocab", None)
        return inputs.Tokens(module.table, vocab)
    return inputs.Raw(given.max_norm)


def _check_kind_shape(kind: str, shape: tuple[int, ...]) -> None:
    if kind in KIND_DIMS and len(shape) != KIND_DIMS[kind]:
        raise FeatscopeError(
            f"a {kind} input has shape {KIND_LAYOUT[kind]} (no batch dim), but this model's "
            f"input is {tuple(shape)}: give --input-shape, or --input-kind tensor for any shape")


def _check_kind_options(given: InputOptions, kind: str) -> None:
    # An option of another kind would be silently ignored: say so instead.
    misplaced = [option for option, value, wanted in (
        ("--sample-rate", given.sample_rate, ("signal",)),
        ("--bounds", given.bounds, ("vector",)),
        ("--vocab", given.vocab, ("tokens",)),
        ("--max-norm", given.max_norm, ("vector", "volume", "tensor")))
        if value is not None and kind not in wanted]
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


def output_is_tensor(adapted: Adapted) -> bool:
    return isinstance(adapted.output, torch.Tensor) and not dataclasses.is_dataclass(adapted.output)
