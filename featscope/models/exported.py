"""``torch.export`` programs (``.pt2``), as modules whose inner layers can be probed.

``torch.export.unflatten`` turns the program back into a tree of modules with the original
paths ("0", "features.2", "layer4.1.conv2") whose forward hooks fire, so targets and
``featscope layers`` read as for the Python model.

A program exported without ``dynamic_shapes`` is specialized to its example's batch size and
refuses any other. When its computation does not depend on that size (most convolutional
graphs: checked on two batches at load time), the check is lifted; when it does (a
``x.reshape(x.shape[0], -1)`` was recorded as ``reshape(1, -1)``), ``FixedBatch`` runs a batch
B as slices of the exported size, so a search over B inputs still works.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import FeatscopeError
from .adapters import Adapter
from .base import IDENTITY_SOURCE, LoadedModel, identity_normalization
from .metadata import channels_of
from .weights import apply_weights

DYNAMIC_HINT = ("export with dynamic_shapes=({0: torch.export.Dim.DYNAMIC},) for a batch-generic "
                "program")


def _concat(values: Sequence[object], count: int) -> object:
    """The per-slice values (tensors (b, ...), or tuples/lists/dicts of them) joined along
    the batch and cut to ``count``; anything else is taken from the first slice."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(values))[:count] if first.dim() else first
    if isinstance(first, (tuple, list)):
        parts = [_concat(list(p), count) for p in zip(*values)]
        return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)
    if isinstance(first, dict):
        return {k: _concat([v[k] for v in values], count) for k in first}
    return first


def _batch_slices(inputs: Sequence[object], size: int) -> Iterator[tuple[object, ...]]:
    """``inputs`` (B, ...) in slices of ``size`` along the batch, the last one padded by
    repeating its last row; inputs that are not batched tensors are passed as they are."""
    count = inputs[0].shape[0]  # type: ignore[union-attr]

    def cut(value: object, start: int) -> object:
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != count:
            return value
        part = value[start:start + size]
        missing = size - part.shape[0]
        return torch.cat([part, part[-1:].expand(missing, *part.shape[1:])]) if missing else part

    for start in range(0, count, size):
        yield tuple(cut(value, start) for value in inputs)


class _HeldHooks:
    """Inside the block the forward hooks of ``root``'s modules are set aside and each call's
    (inputs, output) is recorded per slice; ``replay`` then calls the held hooks as one
    forward pass of the whole batch would: once per call of a module, in the order the
    calls finished, with the slices' values concatenated.

    torch lists no module's hooks publicly: ``_forward_hooks`` is swapped for an empty dict
    and restored, the same dict object, so that the hooks' handles keep working."""

    def __init__(self, root: nn.Module):
        self.modules = [m for m in root.modules() if m._forward_hooks]
        self.held: dict[nn.Module, OrderedDict] = {}
        self.calls: dict[nn.Module, list[list[tuple[object, object]]]] = {}
        self.order: list[tuple[nn.Module, int]] = []  # (module, call index), first slice
        self.slice = 0

    def __enter__(self) -> _HeldHooks:
        for module in self.modules:
            self.held[module] = module._forward_hooks
            module._forward_hooks = OrderedDict()
            module.register_forward_hook(self._recorder(module))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, hooks in self.held.items():
            module._forward_hooks = hooks

    def _recorder(self, module: nn.Module):
        def record(_: nn.Module, inputs: tuple, output: object) -> None:
            slices = self.calls.setdefault(module, [])
            slices.extend([] for _ in range(self.slice + 1 - len(slices)))
            slices[self.slice].append((inputs, output))
            if self.slice == 0:
                self.order.append((module, len(slices[0]) - 1))
        return record

    def replay(self, count: int) -> None:
        for module, index in self.order:
            calls = [per_slice[index] for per_slice in self.calls[module]]
            inputs = _concat([c[0] for c in calls], count)
            output = _concat([c[1] for c in calls], count)
            for hook_id, hook in self.held[module].items():
                if hook_id in module._forward_hooks_with_kwargs:
                    result = hook(module, inputs, {}, output)
                else:
                    result = hook(module, inputs, output)
                if result is not None and result is not output:
                    raise FeatscopeError(
                        "a hook replaces a layer's output, which a program exported for a "
                        f"fixed batch (run slice by slice) cannot honour; {DYNAMIC_HINT}")


class FixedBatch(Adapter):
    """A module specialized to batch ``size``, run on any batch B as ceil(B / size) calls on
    slices of the batch, their outputs concatenated (B, ...).

    A forward hook on an inner layer fires once per forward of the whole batch with the
    layer's (B, ...) output, concatenated from the slices' and differentiable w.r.t. the
    input, as in a batch-generic model. Layer paths are the wrapped module's.
    """

    def __init__(self, model: nn.Module, size: int):
        super().__init__(model)
        self.size = size

    def forward(self, *inputs: torch.Tensor) -> object:
        count = inputs[0].shape[0]
        if count == self.size:
            return self.model(*inputs)
        held = _HeldHooks(self.model)
        with held:
            outputs = []
            for index, part in enumerate(_batch_slices(inputs, self.size)):
                held.slice = index
                outputs.append(self.model(*part))
        held.replay(count)
        return _concat(outputs, count)


def _load(path: Path) -> torch.export.ExportedProgram:
    try:
        return torch.export.load(str(path))
    except Exception as error:  # not an archive, another torch version's format, ...
        lines = str(error).strip().splitlines()
        raise FeatscopeError(f"cannot load torch.export file {str(path)!r}: "
                             f"{type(error).__name__}: {lines[0] if lines else ''}. Valid: a "
                             "file written by torch.export.save") from None


def _input_values(program: torch.export.ExportedProgram) -> list[object]:
    """The fake values (shapes, dtypes) of the program's user inputs, in order."""
    names = set(program.graph_signature.user_inputs)
    return [node.meta.get("val") for node in program.graph.nodes
            if node.op == "placeholder" and node.name in names]


def _stand_in(value: torch.Tensor, shape: Sequence[int] | None) -> torch.Tensor | None:
    """Zeros shaped as an input's recorded fake value: a dynamic batch as 1, other dynamic
    dims from ``shape`` (no batch dim); None when they are dynamic and ``shape`` is None."""
    batch = value.shape[0] if isinstance(value.shape[0], int) else 1
    rest = tuple(value.shape[1:])
    if not all(isinstance(d, int) for d in rest):
        if shape is None:
            return None
        rest = tuple(shape)
    return torch.zeros((batch, *rest), dtype=value.dtype)


def _example_inputs(program: torch.export.ExportedProgram, path: Path,
                    input_shape: Sequence[int] | None) -> tuple[torch.Tensor, ...]:
    """The example inputs the program was exported with (B, ...), or stand-ins of their
    recorded shapes when the file kept none (``input_shape`` for the first input's dynamic
    dims)."""
    saved = program.example_inputs
    if saved is not None and saved[0] and all(isinstance(a, torch.Tensor) for a in saved[0]):
        return tuple(saved[0])
    values = _input_values(program)
    if not values or not all(isinstance(v, torch.Tensor) for v in values):
        raise FeatscopeError(f"torch.export file {str(path)!r} records no tensor inputs")
    stand_ins = [_stand_in(v, input_shape if i == 0 else None) for i, v in enumerate(values)]
    if any(s is None for s in stand_ins):
        raise FeatscopeError(f"torch.export file {str(path)!r} keeps no example inputs and has "
                             "dynamic input dims: give --input-shape (no batch dim) for its "
                             "first input; other inputs need fixed dims")
    return tuple(stand_ins)  # type: ignore[arg-type]


def _static_batch(program: torch.export.ExportedProgram) -> int | None:
    """The batch size the program is specialized to; None when its batch dim is dynamic."""
    values = _input_values(program)
    if not values or not isinstance(values[0], torch.Tensor) or values[0].dim() == 0:
        return None
    batch = values[0].shape[0]
    return int(batch) if isinstance(batch, int) else None


def _static_dims(program: torch.export.ExportedProgram) -> tuple[int | None, ...]:
    """The first input's dims after the batch: a size where fixed, None where dynamic."""
    values = _input_values(program)
    if not values or not isinstance(values[0], torch.Tensor):
        return ()
    return tuple(d if isinstance(d, int) else None for d in values[0].shape[1:])


def _input_shape(program: torch.export.ExportedProgram, example: torch.Tensor,
                 given: Sequence[int] | None, path: Path) -> tuple[int, ...]:
    exported = tuple(int(d) for d in example.shape[1:])
    if given is None:
        return exported
    given = tuple(int(d) for d in given)
    fixed = _static_dims(program)
    if len(fixed) != len(given) or any(f is not None and f != g for f, g in zip(fixed, given)):
        raise FeatscopeError(f"torch.export file {str(path)!r} was exported for inputs "
                             f"{exported} (no batch dim) and takes no input shape {given}: "
                             "drop --input-shape, or export it with dynamic_shapes")
    return given


def _other_batch(example: torch.Tensor) -> torch.Tensor:
    """An input of the example's shape with other values (a token id input keeps its ids)."""
    if example.dtype.is_floating_point:
        return torch.rand_like(example)
    return example.roll(1, -1) if example.dim() > 1 else example.flip(0)


def _leaves(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _leaves(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _leaves(v)]
    return []


def batch_generic(module: nn.Module, examples: Sequence[torch.Tensor]) -> bool:
    """Whether ``module`` computes each sample on its own at twice the examples' batch size:
    its output on two batches joined equals its outputs on each."""
    first = list(examples)
    second = [_other_batch(e) for e in examples]
    count = 2 * first[0].shape[0]
    try:
        with torch.no_grad():
            joint = module(*[torch.cat([a, b]) for a, b in zip(first, second)])
            apart = _concat([module(*first), module(*second)], count)
    except Exception:  # a shape recorded at export time no longer fits
        return False
    joint, apart = _leaves(joint), _leaves(apart)
    return len(joint) == len(apart) and all(
        j.shape == a.shape and torch.allclose(j, a, rtol=1e-3, atol=1e-4)
        for j, a in zip(joint, apart))


def exported_program_model(path: Path, input_shape: Sequence[int] | None = None,
                           weights: str | None = None) -> LoadedModel:
    """A ``torch.export.save`` file as a module with the original layer paths; the input
    shape from the program's example inputs unless given. No normalization: a program keeps
    no Python attributes that could declare one (give ``normalize``)."""
    program = _load(path)
    examples = _example_inputs(program, path, input_shape)
    shape = _input_shape(program, examples[0], input_shape, path)
    try:
        module = torch.export.unflatten(program)
    except Exception as error:
        lines = str(error).strip().splitlines()
        raise FeatscopeError(f"cannot rebuild the layers of torch.export file {str(path)!r}: "
                             f"{type(error).__name__}: {lines[0] if lines else ''}") from None
    notes = apply_weights(module, weights) if weights is not None else ()
    batch = _static_batch(program)
    if batch is not None:
        module.check_input_constraints = False
        if not batch_generic(module, examples):
            module.check_input_constraints = True
            module = FixedBatch(module, batch)
            notes += (f"{str(path)!r} was exported for batch size {batch} only, so a batch "
                      f"runs in slices of {batch} (slower); {DYNAMIC_HINT}",)
    return LoadedModel(module.eval(), str(path), shape, identity_normalization(channels_of(shape)),
                       normalization_source=IDENTITY_SOURCE, notes=notes)
