"""Unit objectives: features of a layer, neurons, classes, directions and custom functions.

A layer's output is read through its layout (``engine.layout``): as a map (B, C, *S) of C
features over N = len(S) >= 0 map dims — a convolution's (B, C, H, W), a channels-last
(B, H, W, C), or the patch tokens of (B, T, C) on their grid, prefix tokens (CLS, registers)
left out. A feature becomes a scalar by global average pooling (``pool="mean"``), global max
pooling (``pool="max"``), or by reading one location (``Neuron``; ``"cls"`` reads the class
token).

The layout is found from the model when an objective is bound to it (``bind(layers=...)``,
which ``render`` and the analyses do); ``layout=`` ("BTC", "TBC", "BHWC", "BCHW" or a
``Layout``), ``feature_axis=-1`` (features last) and ``prefix=`` declare it instead. An
objective scored without being bound reads its declared layout, or features first.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch

from ..engine.layout import LAST, ORDERS, Layout, infer_layout
from ..engine.probing import MODEL_OUTPUT, LayerInfo
from ..errors import FeatscopeError, did_you_mean
from .base import ActivationMap as Activations
from .base import Objective, Resident

Pool = Literal["mean", "max"]
POOLS: tuple[str, ...] = ("mean", "max")
CLS = "cls"  # a neuron's position: the class token (the first prefix token)
_INT = re.compile(r"^\d+$")


def check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise FeatscopeError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")


def declared_order(feature_axis: int | None, layout: Layout | str | None) -> str | None:
    """The layout order a user declared with ``feature_axis`` or ``layout`` (None: none)."""
    if isinstance(layout, Layout):
        return layout.order
    if layout is not None:
        order = str(layout).upper()
        if order not in ORDERS:
            raise FeatscopeError(f"unknown layout {layout!r}; valid: {', '.join(ORDERS)}")
        if feature_axis is not None:
            raise FeatscopeError("give the layout or feature_axis, not both")
        return order
    if feature_axis is None:
        return None
    if feature_axis == 1:
        return "BCHW"
    if feature_axis == -1:
        return LAST
    raise FeatscopeError(f"feature_axis {feature_axis} is not supported: 1 (features first) or "
                         f"-1 (features last); for other layouts give layout= "
                         f"({', '.join(ORDERS)})")


def features_first(act: torch.Tensor, feature_axis: int) -> torch.Tensor:
    """(B, ..., C at feature_axis, ...) -> (B, C, *S)."""
    axis = feature_axis % act.dim()
    if axis == 0:
        raise FeatscopeError("feature_axis cannot be the batch axis (0)")
    return act if axis == 1 else act.movedim(axis, 1)


def check_feature(layer: str, act: torch.Tensor, k: int) -> None:
    """``act`` (B, C, ...): feature ``k`` must be one of its C."""
    count = act.shape[1]
    if not 0 <= k < count:
        label = "the model output" if layer == MODEL_OUTPUT else f"layer {layer!r}"
        raise FeatscopeError(
            f"feature {k} is out of range for {label}: it has {count} features, "
            f"valid 0..{count - 1}"
        )


def pool_map(fmap: torch.Tensor, pool: Pool) -> torch.Tensor:
    """(B, *S) feature maps -> (B,) by global average or max over the N >= 0 map dims."""
    check_pool(pool)
    flat = fmap.reshape(fmap.shape[0], -1)
    return flat.mean(dim=1) if pool == "mean" else flat.amax(dim=1)


class LayerObjective(Objective):
    """An objective on one layer's features, read through the layer's layout.

    ``layout``: a ``Layout`` (the layer is read so), an order name (declared: the prefix
    count and grid are still found from the model) or None (found from the model).
    ``feature_axis``: 1 or -1, the older way to declare features first or last. ``prefix``:
    the number of prefix tokens, declared.
    """

    def __init__(self, layer: str, feature_axis: int | None = None,
                 layout: Layout | str | None = None, prefix: int | None = None):
        self.layer = layer
        self.layers = frozenset({layer})
        self.order = declared_order(feature_axis, layout)
        self.prefix = prefix
        self.layout = layout if isinstance(layout, Layout) else None

    @property
    def layout_key(self) -> object:
        """What decides how the layer is read: the same key, the same reading."""
        return self.layout or (self.order, self.prefix)

    def layout_for(self, act: torch.Tensor) -> Layout:
        """The layout the output ``act`` is read with: the bound one, else the declared one
        (features first when none is)."""
        if self.layout is not None:
            return self.layout
        if self.order is None:
            return Layout("BCHW")
        axis = 1 if self.order == "TBC" else 0
        shape = tuple(act.shape[:axis]) + tuple(act.shape[axis + 1:])
        return infer_layout(shape, axis, order=self.order, prefix=self.prefix, layer=self.layer)

    def feature_map(self, act: torch.Tensor) -> torch.Tensor:
        """(B, C, *S): the layer's map or patch tokens, features second."""
        return self.layout_for(act).feature_map(act)

    def layouts_needed(self) -> frozenset[str]:
        return frozenset() if self.layout is not None else self.layers

    def layout_of(self, layer: str) -> Layout | None:
        return self.layout if layer == self.layer else None

    def batch_axis(self, layer: str) -> int:
        if layer != self.layer:
            return 0
        return self.layout.batch_axis if self.layout else int(self.order == "TBC")

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        if self.layout is not None or not layers or self.layer not in layers:
            return self
        bound = copy.copy(self)
        bound.layout = layers[self.layer].layout(self.order, self.prefix)
        return bound


class Channel(LayerObjective):
    """Feature ``k`` of ``layer``, pooled over its map or patch tokens (``border`` px
    excluded at each side of a map)."""

    def __init__(self, layer: str, k: int, pool: Pool = "mean", feature_axis: int | None = None,
                 border: int = 0, layout: Layout | str | None = None, prefix: int | None = None):
        check_pool(pool)
        super().__init__(layer, feature_axis, layout, prefix)
        self.k, self.pool, self.border = int(k), pool, border
        self.name = f"{layer}:{k}" + ("" if pool == "mean" else f"/{pool}")

    def score(self, acts: Activations) -> torch.Tensor:
        act = self.feature_map(acts[self.layer])
        check_feature(self.layer, act, self.k)
        fmap = act[:, self.k]
        if self.border:
            b = self.border
            fmap = fmap[(slice(None),) + (slice(b, -b),) * (fmap.dim() - 1)]
        return pool_map(fmap, self.pool)


class Neuron(LayerObjective):
    """Feature ``k`` of ``layer`` at one location ``position`` of its map or patch grid
    (centre if None), or at the class token (``position="cls"``)."""

    def __init__(self, layer: str, k: int, position: Sequence[int] | str | None = None,
                 feature_axis: int | None = None, layout: Layout | str | None = None,
                 prefix: int | None = None):
        super().__init__(layer, feature_axis, layout, prefix)
        self.k = int(k)
        self.position = position if position is None or position == CLS else tuple(position)
        where = ("" if self.position is None else f"@{CLS}" if self.position == CLS
                 else "@" + ",".join(map(str, self.position)))
        self.name = f"{layer}:{k}{where}"

    def score(self, acts: Activations) -> torch.Tensor:
        act = acts[self.layer]
        layout = self.layout_for(act)
        if self.position == CLS:
            if not layout.tokens or not layout.prefix:
                raise FeatscopeError(f"layer {self.layer!r} has no class token ({layout.order}, "
                                     f"{layout.prefix} prefix tokens): address a location "
                                     "Y,X instead")
            tokens = layout.prefix_features(act)
            check_feature(self.layer, tokens, self.k)
            return tokens[:, self.k, 0]
        act = layout.feature_map(act)
        check_feature(self.layer, act, self.k)
        spatial = act.shape[2:]
        position = self.position if self.position is not None else tuple(s // 2 for s in spatial)
        if len(position) != len(spatial) or not all(0 <= p < s for p, s in zip(position, spatial)):
            raise FeatscopeError(
                f"position {position} is outside layer {self.layer!r}'s map of size "
                f"{tuple(spatial)}: give {len(spatial)} coordinate(s), each 0 <= i < size"
            )
        return act[(slice(None), self.k) + position]


class ClassLogit(Objective):
    """The pre-softmax score of class ``k`` in the model's output (B, classes).

    ``k`` is an index or a class name; a name is resolved against ``class_names`` (given
    here, or by ``render`` from the model it renders).
    """

    kind = "logit"

    def __init__(self, k: int | str, label: str | None = None,
                 class_names: Sequence[str] | None = None):
        self.layers = frozenset({MODEL_OUTPUT})
        self.k: int | None = None
        self.label = label
        if isinstance(k, int) or _INT.match(str(k).strip()) or class_names:
            self.k, found = class_index(k, class_names)
            self.label = label or found
        else:
            self.label = label or str(k)
        self.name = f"{self.kind}:{self.label if self.label is not None else self.k}"

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        if self.k is not None:
            return self
        return type(self)(self.label, class_names=class_names)

    def logits(self, acts: Activations) -> torch.Tensor:
        if self.k is None:
            raise FeatscopeError(f"class {self.label!r} is given by name: render it with a model "
                                 "that has class names (load_model), or give the class index")
        logits = acts[MODEL_OUTPUT].reshape(acts[MODEL_OUTPUT].shape[0], -1)
        check_feature(MODEL_OUTPUT, logits, self.k)
        return logits

    def score(self, acts: Activations) -> torch.Tensor:
        return self.logits(acts)[:, self.k]


class ClassProbability(ClassLogit):
    """softmax(logits)[k]: the model's confidence in class ``k``."""

    kind = "prob"

    def score(self, acts: Activations) -> torch.Tensor:
        return self.logits(acts).softmax(dim=1)[:, self.k]


class Direction(LayerObjective):
    """The dot product of ``layer``'s feature vectors with ``vector``, pooled over the map.

    ``vector`` is (C,), one direction for every location, or (C, *S), one per location of
    the layer's map (e.g. a photo's features at that layer: feature inversion). With
    ``cosine=True`` the cosine similarity is used instead, so that only the direction of the
    activation matters, not its magnitude.
    """

    def __init__(self, layer: str, vector: torch.Tensor | Sequence[float], pool: Pool = "mean",
                 feature_axis: int | None = None, cosine: bool = False,
                 layout: Layout | str | None = None, prefix: int | None = None,
                 name: str | None = None):
        super().__init__(layer, feature_axis, layout, prefix)
        self.pool, self.cosine = pool, cosine
        vector = torch.as_tensor(vector, dtype=torch.float32)
        # (C, 1, 1) is one direction for every location too
        self.vector = vector.reshape(-1) if all(s == 1 for s in vector.shape[1:]) else vector
        self._vector = Resident(self.vector)
        self.name = name or f"direction({layer})"

    def score(self, acts: Activations) -> torch.Tensor:
        act = self.feature_map(acts[self.layer])
        vector = self._vector.like(act)
        fits = (vector.shape[0] == act.shape[1] if vector.dim() == 1
                else vector.shape == act.shape[1:])
        if not fits:
            raise FeatscopeError(
                f"the direction has shape {tuple(self.vector.shape)} but layer {self.layer!r} "
                f"reads as {act.shape[1]} features over {tuple(act.shape[2:]) or 'no map'}: give "
                f"({act.shape[1]},) or {(act.shape[1], *act.shape[2:])}")
        vector = vector.reshape((1, -1) + (1,) * (act.dim() - 2)) if vector.dim() == 1 \
            else vector[None]
        if self.cosine:
            fmap = torch.nn.functional.cosine_similarity(act, vector, dim=1, eps=1e-8)
        else:
            fmap = (act * vector).sum(dim=1)
        return pool_map(fmap, self.pool)


class Custom(Objective):
    """A user function ``fn(acts) -> (B,) or scalar`` over the activations of ``layers``."""

    def __init__(self, fn: Callable[[Activations], torch.Tensor], layers: Sequence[str],
                 name: str | None = None):
        self.fn = fn
        self.layers = frozenset(layers)
        self.name = name or getattr(fn, "__name__", "custom")

    def score(self, acts: Activations) -> torch.Tensor:
        value = self.fn(acts)
        if not isinstance(value, torch.Tensor):
            raise FeatscopeError(f"custom objective {self.name!r} must return a tensor")
        batch = next(iter(acts.values())).shape[0]
        return value.reshape(-1).expand(batch) if value.numel() == 1 else value.reshape(batch)



def class_index(text: str | int, class_names: Sequence[str] | None) -> tuple[int, str | None]:
    """A class given by index or by name -> (index, its name if known)."""
    if isinstance(text, int) or _INT.match(str(text).strip()):
        index = int(text)
        label = class_names[index] if class_names and 0 <= index < len(class_names) else None
        return index, label
    if not class_names:
        raise FeatscopeError(f"class {text!r} is not a number, and this model has no class "
                             "names; give the class index")
    wanted = text.strip().lower().replace("_", " ")
    for index, name in enumerate(class_names):
        if name.lower() == wanted:
            return index, name
    raise FeatscopeError(f"unknown class name {text!r}.{did_you_mean(text, class_names)}")


# Lower-case constructors read well in user code: channel("conv1", 3) + 0.1 * neuron(...)
channel = Channel
neuron = Neuron
class_logit = ClassLogit
class_probability = ClassProbability
direction = Direction
custom = Custom
