"""Adapters: wrappers that give any model the one-tensor-in, one-tensor-out form the search uses.

- ``SelectOutput``: a forward returning a tuple, list, dict or dataclass -> one of its fields;
- ``SearchOneInput``: a model with several inputs -> a model of the searched one, the others
  fixed (from a file, or zeros);
- ``EmbeddingInput``: a model of token ids -> a model of the continuous embeddings (B, T, D)
  that its embedding layer would produce, so that the search can move through that space.

An adapter keeps the wrapped model's layer names (``named_modules`` is the wrapped model's),
so targets and ``featscope layers`` read the same with or without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from ..engine.probing import resolve_layer
from ..errors import FeatscopeError
from .base import LoadedModel


class Adapter(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        # The wrapped model's paths, not "model.<path>": layer names stay the user's.
        return self.model.named_modules(memo, prefix, remove_duplicate)

    def get_submodule(self, target: str) -> nn.Module:
        # The same paths as named_modules: "" is the wrapped model.
        return self.model.get_submodule(target)


def output_keys(output: object) -> list[str]:
    """The keys ``select_output`` accepts for a model output (empty for a plain tensor)."""
    if isinstance(output, dict):
        return [str(k) for k in output]
    if dataclasses.is_dataclass(output):
        return [f.name for f in dataclasses.fields(output)]
    if isinstance(output, (tuple, list)):
        fields = getattr(output, "_fields", None)  # a namedtuple's names work as keys too
        return list(fields) if fields else [str(i) for i in range(len(output))]
    return []


def select_output(output: object, key: str) -> torch.Tensor:
    """``output[key]`` for a dict, tuple/list (an index) or dataclass/namedtuple (a field)."""
    keys = output_keys(output)
    if key not in keys:
        valid = ", ".join(keys) if keys else "none (it returns a single tensor)"
        raise FeatscopeError(f"unknown --output {key!r}; this model's outputs are: {valid}")
    if isinstance(output, dict):
        value = next(v for k, v in output.items() if str(k) == key)
    elif isinstance(output, (tuple, list)) and key.isdigit():
        value = output[int(key)]
    else:
        value = getattr(output, key)
    if not isinstance(value, torch.Tensor):
        raise FeatscopeError(f"output {key!r} is a {type(value).__name__}, not a tensor")
    return value


class SelectOutput(Adapter):
    """The model with its output replaced by ``output[key]``."""

    def __init__(self, model: nn.Module, key: str):
        super().__init__(model)
        self.key = key

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return select_output(self.model(*inputs), self.key)


class SearchOneInput(Adapter):
    """The model as a function of its input ``index``; the other inputs are fixed tensors.

    ``fixed`` holds every other input without its batch dim, in order; each is repeated
    along the batch of the searched input.
    """

    def __init__(self, model: nn.Module, index: int, fixed: Sequence[torch.Tensor]):
        super().__init__(model)
        if not 0 <= index <= len(fixed):
            raise FeatscopeError(f"--search-input {index} is out of range: this model has "
                                 f"{len(fixed) + 1} inputs, valid 0..{len(fixed)}")
        self.index = index
        for i, tensor in enumerate(fixed):
            self.register_buffer(f"fixed_{i}", tensor, persistent=False)
        self.count = len(fixed)

    def forward(self, x: torch.Tensor) -> object:
        others = [getattr(self, f"fixed_{i}") for i in range(self.count)]
        others = [t.unsqueeze(0).expand(x.shape[0], *t.shape) for t in others]
        return self.model(*others[:self.index], x, *others[self.index:])


def load_fixed_inputs(path: str | None, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """The fixed inputs: the arrays of an ``.npz``/``.pt`` file in order, or zeros of ``shapes``."""
    if path is None:
        return [torch.zeros(shape) for shape in shapes]
    try:
        if str(path).endswith(".npz"):
            import numpy as np
            with np.load(path) as archive:
                values = [torch.from_numpy(archive[k]) for k in archive.files]
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            values = list(loaded.values()) if isinstance(loaded, dict) else list(loaded)
    except Exception as error:  # numpy/torch raise many types for a bad file
        raise FeatscopeError(f"cannot read fixed inputs {str(path)!r}: "
                             f"{error.__class__.__name__}: {error}. Expected an .npz with one "
                             "array per other input, or a .pt list/dict of tensors") from None
    if not all(isinstance(v, torch.Tensor) for v in values):
        raise FeatscopeError(f"fixed inputs {str(path)!r} must hold tensors or arrays only")
    # Inputs saved with a batch dim of 1 are accepted too.
    return [v[0] if v.dim() > 0 and v.shape[0] == 1 and len(v.shape) > 1 else v for v in values]


class EmbeddingInput(Adapter):
    """The model as a function of the output (B, T, D) of its embedding layer ``layer``.

    The model is called with token ids of zeros (B, T) and the embedding layer's output is
    replaced by the searched embeddings; integer inputs (real token ids) pass through, so
    the same module scores the nearest hard tokens.
    """

    def __init__(self, model: nn.Module, layer: str):
        super().__init__(model)
        self.layer = layer
        self.embedding = resolve_layer(model, layer)
        if not isinstance(self.embedding, nn.Embedding):
            raise FeatscopeError(f"layer {layer!r} is a {type(self.embedding).__name__}, not an "
                                 "nn.Embedding; give the token embedding layer")

    @property
    def table(self) -> torch.Tensor:
        """The embedding matrix (V, D)."""
        return self.embedding.weight

    def forward(self, x: torch.Tensor) -> object:
        if not x.dtype.is_floating_point:
            return self.model(x)
        ids = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        # Prepended, so that other hooks on the embedding (a probe) see the searched values.
        handle = self.embedding.register_forward_hook(lambda module, inputs, output: x,
                                                      prepend=True)
        try:
            return self.model(ids)
        finally:
            handle.remove()


def adapt(loaded: LoadedModel, *, output: str | None = None, search_input: int = 0,
          input_shapes: Sequence[tuple[int, ...]] = (), fixed_inputs: str | None = None,
          embedding: str | None = None, seq_len: int | None = None) -> LoadedModel:
    """``loaded`` with the adapters the options ask for.

    ``input_shapes`` lists the shape of every model input (no batch dim) when there are
    several; the inputs other than ``search_input`` are read from ``fixed_inputs`` (then a
    single shape, the searched input's, is enough) or are zeros. ``embedding`` and
    ``seq_len`` switch the searched input to token embeddings.
    """
    module, shape = loaded.module, tuple(loaded.input_shape)
    if len(input_shapes) > 1 or fixed_inputs is not None:
        if fixed_inputs is not None:
            fixed = load_fixed_inputs(fixed_inputs, ())
            if input_shapes:
                shape = input_shapes[search_input if len(input_shapes) > 1 else 0]
        else:
            if not 0 <= search_input < len(input_shapes):
                raise FeatscopeError(f"--search-input {search_input} is out of range: "
                                     f"{len(input_shapes)} input shapes given, valid "
                                     f"0..{len(input_shapes) - 1}")
            shape = input_shapes[search_input]
            fixed = load_fixed_inputs(None, [s for i, s in enumerate(input_shapes)
                                             if i != search_input])
        module = SearchOneInput(module, search_input, fixed)
    elif input_shapes:
        shape = input_shapes[0]
    if output is not None:
        module = SelectOutput(module, output)
    if embedding is not None:
        embedded = EmbeddingInput(module, embedding)
        length = seq_len or (shape[0] if len(shape) == 1 else None)
        if not length:
            raise FeatscopeError("token models need --seq-len T (the number of tokens)")
        module, shape = embedded, (int(length), embedded.table.shape[1])
    return replace(loaded, module=module, input_shape=tuple(int(s) for s in shape))
