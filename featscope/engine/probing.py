"""Reading the outputs of chosen layers of any ``nn.Module``.

Hooks are put only on the probed layers and removed when the probe closes, even on error.
When every probed layer has produced its output, the rest of the forward pass is skipped
(``StopForward``): for a layer in the middle of a network that is most of the cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import FeatscopeError, did_you_mean
from .layout import Layout, LayoutClues, infer_layout, model_clues, module_evidence

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
        # The probe keeps no output after the run: one would keep that pass's autograd graph
        # (its activations, the inputs' gradient accumulators) alive into the next pass.
        captured, self._captured = self._captured, {}
        missing = [n for n in self.layers if n not in captured]
        if missing:
            raise FeatscopeError(
                f"layer(s) {', '.join(map(repr, missing))} did not run during the forward pass; "
                "probe a layer that the model's forward() calls"
            )
        return captured


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
    """A layer that returns a tensor: its output's shape and what says how to read it."""

    name: str
    kind: str
    shape: tuple[int, ...]  # output shape without the batch axis
    # Where the batch is in the output: 1 for sequence-first (T, B, C); None when no axis
    # follows the batch alone (rows that mix images with windows or heads, or no batch).
    batch_axis: int | None = 0
    clues: LayoutClues = LayoutClues()
    batched: tuple[int, ...] = ()  # the output's shape for a batch of two

    def layout(self, order: str | None = None, prefix: int | None = None) -> Layout:
        """How to read this layer (``infer_layout``), with what the user declared."""
        if self.batch_axis is None:
            raise FeatscopeError(
                f"layer {self.name!r} gives {self.shape} for one image and {self.batched} for "
                "two: no axis of its output holds the batch alone (its rows mix images with "
                "windows or heads), so its features cannot be read per image; probe a layer "
                "after it")
        return infer_layout(self.shape, self.batch_axis, self.clues, order=order,
                            prefix=prefix, layer=self.name or "(model output)")

    def features(self, order: str | None = None, prefix: int | None = None) -> int | None:
        """The number of features of this layer (None: it has no output shape)."""
        return self.layout(order, prefix).features_of(self.shape) if self.shape else None

    @property
    def mlp_hidden(self) -> bool:
        """A transformer MLP's hidden layer: the activation after its first linear layer (in
        a module named like ``mlp``/``ffn``), where Ghiasi et al. (2022) found a ViT's most
        interpretable features."""
        *parents, last = self.name.split(".")
        return (bool(parents) and _MLP.search(parents[-1].lower()) is not None
                and (_ACTIVATION.search(last.lower()) is not None
                     or _ACTIVATION.search(self.kind.lower()) is not None))


_MLP = re.compile(r"mlp|ffn|feed_?forward|intermediate")
_ACTIVATION = re.compile(r"act|gelu|relu|silu|swish|quickgelu")


Outputs = dict[str, tuple[str, nn.Module, tuple[int, ...]]]  # name -> (type, module, shape)


def _outputs(model: nn.Module, batch: torch.Tensor) -> Outputs:
    """The output shape of every submodule that returns a tensor on ``batch``, and of the
    model (``MODEL_OUTPUT``), in execution order."""
    seen: Outputs = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if name not in seen and isinstance(output, torch.Tensor):
                seen[name] = (type(module).__name__, module, tuple(output.shape))
        return hook

    # TorchScript runs its layers as compiled code: only its output can be read.
    scripted = isinstance(model, torch.jit.ScriptModule)
    handles = [module.register_forward_hook(hook_for(name))
               for name, module in ([] if scripted else model.named_modules()) if name]
    try:
        with frozen(model), torch.no_grad():
            output = model(batch)
    finally:
        for h in handles:
            h.remove()
    if isinstance(output, torch.Tensor):
        seen[MODEL_OUTPUT] = ("output", model, tuple(output.shape))
    return seen


def list_layers(model: nn.Module, example: torch.Tensor) -> list[LayerInfo]:
    """Every submodule that returns a tensor on ``example`` (1, ...), in execution order.

    The model runs on a batch of one and of two, so that the batch axis of every output is
    found (sequence-first tokens have it on axis 1); a model that refuses a batch of two has
    its batch taken as axis 0. Each layer gets the clues its layout is read from
    (``layout.LayoutClues``).
    """
    example = example[:1]
    one_each = _outputs(model, example)
    try:
        two_each = _outputs(model, torch.cat([example, example]))
    except Exception:  # any model code can fail on another batch size in any way
        two_each = None
    model_wide = model_clues(model, tuple(example.shape[1:]))
    evidence: dict[tuple[int, ...], str] = {}  # output shape -> the last layer's evidence
    layers = []
    for name, (kind, module, one) in one_each.items():
        two = two_each.get(name, (None, None, ()))[2] if two_each is not None else ()
        axis = _batch_axis(one, two) if two_each is not None else 0
        own = None if name == MODEL_OUTPUT else module_evidence(module, one)
        if own is not None:
            evidence[one] = own
        clues = replace(model_wide, evidence=own or evidence.get(one))
        shape = one if axis is None else one[:axis] + one[axis + 1:]
        layers.append(LayerInfo(name, kind, shape, axis, clues, two))
    return layers


def _batch_axis(one: tuple[int, ...], two: tuple[int, ...]) -> int | None:
    """The one axis whose size went from 1 to 2 with the batch, all others unchanged (None:
    there is no such axis)."""
    if len(one) != len(two):
        return None
    changed = [i for i, (a, b) in enumerate(zip(one, two)) if a != b]
    return changed[0] if len(changed) == 1 and (one[changed[0]], two[changed[0]]) == (1, 2) \
        else None


_NUMBERED = re.compile(r"^(.+\.)?\d+$")  # the N-th module of a sequence: "_blocks.3", "3"


def spread_layers(infos: Sequence[LayerInfo], count: int) -> list[str]:
    """``count`` layers spread evenly from the first to the last block of the network.

    Candidates are layers with a 2-D feature map: (C, H, W), a channels-last map, or patch
    tokens on a grid. A transformer's MLP hidden layers are the candidates when there are
    enough of them (Ghiasi et al. 2022: its most interpretable features). Where the network
    is a sequence of blocks (numbered modules with submodules, e.g. ``_blocks.3`` or
    ``layer2.1``), the blocks are the candidates, because their outputs are what the next
    stage sees; otherwise every such layer is.
    """
    spatial, blocks = _spatial_and_blocks(infos)
    hidden = [info for info in spatial if info.mlp_hidden]
    candidates = hidden if len(hidden) >= count else blocks if len(blocks) >= count else spatial
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
    spatial = [info for info in infos if info.name and _has_2d_map(info)]
    if not spatial:
        raise FeatscopeError("this model has no layer with a 2-D feature map (C, H, W) or "
                             "patch tokens on a grid; give --layers explicitly")
    containers = _containers(infos)
    blocks = [info for info in spatial
              if info.name in containers and _NUMBERED.match(info.name)]
    return spatial, blocks


def _has_2d_map(info: LayerInfo) -> bool:
    """Whether ``info``'s output is a 2-D map: (C, H, W), channels-last (H, W, C), or patch
    tokens on an (H, W) grid."""
    try:
        layout = info.layout()
    except FeatscopeError:  # a layer that reads two ways is not chosen for the user
        return False
    if layout.tokens:
        return layout.grid is not None and len(layout.grid) == 2
    return len(info.shape) == 3


def _containers(infos: Sequence[LayerInfo]) -> set[str]:
    names = [info.name for info in infos]
    return {name for name in names if any(other.startswith(name + ".") for other in names)}
