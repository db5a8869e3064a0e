"""Unit objectives: features of a layer, neurons, classes, directions and custom functions.

A feature of a layer whose output is (B, C, *S) with N = len(S) >= 0 non-feature
dimensions is a map over S; it becomes a scalar by global average pooling (``pool="mean"``),
global max pooling (``pool="max"``), or by reading one location (``Neuron``).
``feature_axis`` says where the features are for channels-last outputs such as (B, T, C).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

import torch

from ..engine.probing import MODEL_OUTPUT
from ..errors import FeatscopeError, did_you_mean
from .base import ActivationMap as Activations
from .base import Objective, Resident

Pool = Literal["mean", "max"]
POOLS: tuple[str, ...] = ("mean", "max")
_INT = re.compile(r"^\d+$")


def check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise FeatscopeError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")


def features_first(act: torch.Tensor, feature_axis: int) -> torch.Tensor:
    """(B, ..., C at feature_axis, ...) -> (B, C, *S)."""
    axis = feature_axis % act.dim()
    if axis == 0:
        raise FeatscopeError("feature_axis cannot be the batch axis (0)")
    return act if axis == 1 else act.movedim(axis, 1)


def check_feature(layer: str, act: torch.Tensor, k: int) -> None:
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


class Channel(Objective):
    """Feature ``k`` of ``layer``, pooled over its non-feature dims (``border`` px excluded)."""

    def __init__(self, layer: str, k: int, pool: Pool = "mean", feature_axis: int = 1,
                 border: int = 0):
        check_pool(pool)
        self.layer, self.k, self.pool = layer, int(k), pool
        self.feature_axis, self.border = feature_axis, border
        self.layers = frozenset({layer})
        self.name = f"{layer}:{k}" + ("" if pool == "mean" else f"/{pool}")

    def score(self, acts: Activations) -> torch.Tensor:
        act = features_first(acts[self.layer], self.feature_axis)
        check_feature(self.layer, act, self.k)
        fmap = act[:, self.k]
        if self.border:
            b = self.border
            fmap = fmap[(slice(None),) + (slice(b, -b),) * (fmap.dim() - 1)]
        return pool_map(fmap, self.pool)


class Neuron(Objective):
    """Feature ``k`` of ``layer`` at one location ``position`` of its map (centre if None)."""

    def __init__(self, layer: str, k: int, position: Sequence[int] | None = None,
                 feature_axis: int = 1):
        self.layer, self.k, self.feature_axis = layer, int(k), feature_axis
        self.position = tuple(position) if position is not None else None
        self.layers = frozenset({layer})
        where = "" if self.position is None else "@" + ",".join(map(str, self.position))
        self.name = f"{layer}:{k}{where}"

    def score(self, acts: Activations) -> torch.Tensor:
        act = features_first(acts[self.layer], self.feature_axis)
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

    def bind(self, class_names: Sequence[str] | None) -> Objective:
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


class Direction(Objective):
    """The dot product of ``layer``'s feature vectors with ``vector`` (C,), pooled over the map.

    With ``cosine=True`` the cosine similarity is used instead, so that only the direction of
    the activation matters, not its magnitude.
    """

    def __init__(self, layer: str, vector: torch.Tensor | Sequence[float], pool: Pool = "mean",
                 feature_axis: int = 1, cosine: bool = False):
        self.layer, self.pool, self.feature_axis, self.cosine = layer, pool, feature_axis, cosine
        self.vector = torch.as_tensor(vector, dtype=torch.float32).flatten()
        self._vector = Resident(self.vector)
        self.layers = frozenset({layer})
        self.name = f"direction({layer})"

    def score(self, acts: Activations) -> torch.Tensor:
        act = features_first(acts[self.layer], self.feature_axis)
        if act.shape[1] != self.vector.numel():
            raise FeatscopeError(
                f"direction has {self.vector.numel()} components but layer {self.layer!r} has "
                f"{act.shape[1]} features"
            )
        vector = self._vector.like(act).reshape((1, -1) + (1,) * (act.dim() - 2))
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
