"""Reading the outputs of chosen layers of any ``nn.Module``.

Hooks are put only on the probed layers and removed when the probe closes, even on error.
When every probed layer has produced its output, the rest of the forward pass is skipped
(``StopForward``): for a layer in the middle of a network that is most of the cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import FeatscopeError, did_you_mean

MODEL_OUTPUT = ""  # the root module's path in ``named_modules()``: the model's own output


class StopForward(Exception):
    """Raised inside a hook once every probed layer has run; never escapes ``Probe.run``."""


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule at ``name`` (a ``named_modules()`` path), or a clear error with hints."""
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    raise FeatscopeError(
        f"unknown layer {name!r}.{did_you_mean(name, [n for n in modules if n])} "
        "Run `featscope layers` to list every layer."
    )


def first_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise FeatscopeError(
        f"this layer returns {type(output).__name__}, not a tensor; probe one of its submodules"
    )


class Probe:
    """Captures the outputs (B, ...) of ``layers`` during ``run(x)``.

    ``Probe.run`` returns a mapping layer path -> output tensor. The model's final output is
    available under ``MODEL_OUTPUT`` (the empty path); asking for it disables early stopping.
    Outputs of layers that are not the last to run are cloned, because a later in-place op
    (``ReLU(inplace=True)``) would otherwise overwrite the captured values.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], stop_early: bool = True):
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        self.modules = {name: resolve_layer(model, name) for name in self.layers}
        self.stop_early = stop_early and MODEL_OUTPUT not in self.layers
        self._captured: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> Probe:
        for name, module in self.modules.items():
            if name != MODEL_OUTPUT:
                self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if name in self._captured:  # a module called twice: keep its first call
                return
            tensor = first_tensor(output)
            last = len(self._captured) + 1 == len(self.layers)
            if last and self.stop_early:
                self._captured[name] = tensor
                raise StopForward
            self._captured[name] = tensor.clone()
        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._captured = {}
        try:
            output = self.model(x)
        except StopForward:
            output = None
        if MODEL_OUTPUT in self.layers:
            self._captured[MODEL_OUTPUT] = first_tensor(output)
        missing = [n for n in self.layers if n not in self._captured]
        if missing:
            raise FeatscopeError(
                f"layer(s) {', '.join(map(repr, missing))} did not run during the forward pass; "
                "probe a layer that the model's forward() calls"
            )
        return self._captured


def forward_bytes(model: nn.Module, example: torch.Tensor, layers: Sequence[str]) -> int:
    """Bytes of the outputs of every leaf module in one forward pass of ``example`` (1, ...),
    up to the deepest of ``layers`` (the pass stops there): about what a search keeps per
    unit for its backward pass (functional ops are not counted, folded batch norms are)."""
    total = 0

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with frozen(model), torch.no_grad(), Probe(model, layers) as probe:
            probe.run(example)
    finally:
        for handle in handles:
            handle.remove()
    return total


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no weight gradients inside the block; the model's state is restored after."""
    was_training = model.training
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grad_flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    shape: tuple[int, ...]  # output shape without the batch dimension

    def features(self, feature_axis: int = 1) -> int | None:
        axis = feature_axis - 1 if feature_axis > 0 else feature_axis
        return self.shape[axis] if self.shape else None


def list_layers(model: nn.Module, example: torch.Tensor) -> list[LayerInfo]:
    """Every submodule that returns a tensor on ``example`` (B, ...), in execution order."""
    seen: dict[str, LayerInfo] = {}
    handles = []

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if name not in seen and isinstance(output, torch.Tensor):
                seen[name] = LayerInfo(name, type(module).__name__, tuple(output.shape[1:]))
        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook_for(name)))
    try:
        with frozen(model), torch.no_grad():
            output = model(example)
    finally:
        for h in handles:
            h.remove()
    layers = list(seen.values())
    if isinstance(output, torch.Tensor):
        layers.append(LayerInfo(MODEL_OUTPUT, "output", tuple(output.shape[1:])))
    return layers


_NUMBERED = re.compile(r"^(.+\.)?\d+$")  # the N-th module of a sequence: "_blocks.3", "3"


def spread_layers(infos: Sequence[LayerInfo], count: int) -> list[str]:
    """``count`` layers spread evenly from the first to the last block of the network.

    Candidates are layers with a 2-D feature map (C, H, W). Where the network is a sequence
    of blocks (numbered modules with submodules, e.g. ``_blocks.3`` or ``layer2.1``), the
    blocks are the candidates, because their outputs are what the next stage sees; otherwise
    every such layer is.
    """
    spatial, blocks = _spatial_and_blocks(infos)
    candidates = blocks if len(blocks) >= count else spatial
    if count >= len(candidates):
        return [info.name for info in candidates]
    step = (len(candidates) - 1) / max(1, count - 1)
    return [candidates[round(i * step)].name for i in range(count)]


def every_layer(infos: Sequence[LayerInfo]) -> list[str]:
    """Every layer an atlas shows, low to high: the network's blocks, where it is a sequence
    of blocks (as ``spread_layers`` picks them), otherwise every layer with a 2-D feature
    map."""
    spatial, blocks = _spatial_and_blocks(infos)
    return [info.name for info in (blocks or spatial)]


def _spatial_and_blocks(infos: Sequence[LayerInfo]) -> tuple[list[LayerInfo], list[LayerInfo]]:
    spatial = [info for info in infos if info.name and len(info.shape) == 3]
    if not spatial:
        raise FeatscopeError("this model has no layer with a 2-D feature map (C, H, W); "
                             "give --layers explicitly")
    containers = _containers(infos)
    blocks = [info for info in spatial
              if info.name in containers and _NUMBERED.match(info.name)]
    return spatial, blocks


def _containers(infos: Sequence[LayerInfo]) -> set[str]:
    names = [info.name for info in infos]
    return {name for name in names if any(other.startswith(name + ".") for other in names)}
