"""Objectives: what the search maximizes, as small composable values.

An objective maps the captured activations ``{layer path: (B, ...)}`` to one score per
batch element, shape (B,). Objectives combine with ``+``, ``-`` and scalar ``*`` / ``/``::

    channel("_blocks.8", 5) - 0.5 * channel("_blocks.8", 7)

A feature of a layer whose output is (B, C, *S) with N = len(S) >= 0 non-feature
dimensions is a map over S; it becomes a scalar by global average pooling (``pool="mean"``),
global max pooling (``pool="max"``), or by reading one location (``neuron``).
``feature_axis`` says where the features are for channels-last outputs such as (B, T, C).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch

from .errors import FeatscopeError
from .probing import MODEL_OUTPUT

Activations = Mapping[str, torch.Tensor]
Pool = Literal["mean", "max"]
POOLS: tuple[str, ...] = ("mean", "max")


class Objective:
    """A differentiable score per batch element; subclasses implement ``score``."""

    layers: frozenset[str] = frozenset()
    name: str = "objective"

    def score(self, acts: Activations) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, acts: Activations) -> torch.Tensor:
        return self.score(acts)

    def __add__(self, other: Objective | float) -> Objective:
        return Sum([self, as_objective(other)])

    __radd__ = __add__  # sum([a, b]) starts from 0

    def __sub__(self, other: Objective | float) -> Objective:
        return Sum([self, -1.0 * as_objective(other)])

    def __rsub__(self, other: float) -> Objective:
        return Sum([as_objective(other), -1.0 * self])

    def __neg__(self) -> Objective:
        return -1.0 * self

    def __mul__(self, factor: float) -> Objective:
        if isinstance(factor, Objective) or not isinstance(factor, (int, float)):
            raise TypeError("objectives can be multiplied by numbers only")
        return Scaled(self, float(factor))

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Objective:
        return self * (1.0 / divisor)

    def __repr__(self) -> str:
        return self.name


class Constant(Objective):
    def __init__(self, value: float):
        self.value = float(value)
        self.name = repr(self.value)

    def score(self, acts: Activations) -> torch.Tensor:
        batch = next(iter(acts.values())).shape[0]
        return torch.full((batch,), self.value, device=next(iter(acts.values())).device)


def as_objective(value: Objective | float) -> Objective:
    if isinstance(value, Objective):
        return value
    if isinstance(value, (int, float)):
        return Constant(value)
    raise TypeError(f"cannot combine an objective with {type(value).__name__}")


class Sum(Objective):
    def __init__(self, terms: Sequence[Objective]):
        self.terms = [t for term in terms for t in (term.terms if isinstance(term, Sum) else [term])]
        self.layers = frozenset().union(*(t.layers for t in self.terms))
        self.name = " + ".join(t.name for t in self.terms).replace("+ -", "- ")

    def score(self, acts: Activations) -> torch.Tensor:
        return functools.reduce(operator.add, (t.score(acts) for t in self.terms))


class Scaled(Objective):
    def __init__(self, inner: Objective, factor: float):
        self.inner, self.factor = inner, factor
        self.layers = inner.layers
        self.name = f"-{inner.name}" if factor == -1.0 else f"{factor:g}*{inner.name}"

    def score(self, acts: Activations) -> torch.Tensor:
        return self.factor * self.inner.score(acts)


def _features_first(act: torch.Tensor, feature_axis: int) -> torch.Tensor:
    """(B, ..., C at feature_axis, ...) -> (B, C, *S)."""
    axis = feature_axis % act.dim()
    if axis == 0:
        raise FeatscopeError("feature_axis cannot be the batch axis (0)")
    return act if axis == 1 else act.movedim(axis, 1)


def _check_feature(layer: str, act: torch.Tensor, k: int) -> None:
    count = act.shape[1]
    if not 0 <= k < count:
        label = "the model output" if layer == MODEL_OUTPUT else f"layer {layer!r}"
        raise FeatscopeError(
            f"feature {k} is out of range for {label}: it has {count} features, valid 0..{count - 1}"
        )


def pool_map(fmap: torch.Tensor, pool: Pool) -> torch.Tensor:
    """(B, *S) feature maps -> (B,) by global average or max over the N >= 0 map dims."""
    flat = fmap.reshape(fmap.shape[0], -1)
    if pool == "mean":
        return flat.mean(dim=1)
    if pool == "max":
        return flat.amax(dim=1)
    raise FeatscopeError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")


class Channel(Objective):
    """Feature ``k`` of ``layer``, pooled over its non-feature dims (``border`` px excluded)."""

    def __init__(self, layer: str, k: int, pool: Pool = "mean", feature_axis: int = 1,
                 border: int = 0):
        if pool not in POOLS:
            raise FeatscopeError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")
        self.layer, self.k, self.pool = layer, int(k), pool
        self.feature_axis, self.border = feature_axis, border
        self.layers = frozenset({layer})
        self.name = f"{layer}:{k}" + ("" if pool == "mean" else f"/{pool}")

    def score(self, acts: Activations) -> torch.Tensor:
        act = _features_first(acts[self.layer], self.feature_axis)
        _check_feature(self.layer, act, self.k)
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
        act = _features_first(acts[self.layer], self.feature_axis)
        _check_feature(self.layer, act, self.k)
        spatial = act.shape[2:]
        position = self.position if self.position is not None else tuple(s // 2 for s in spatial)
        if len(position) != len(spatial) or not all(0 <= p < s for p, s in zip(position, spatial)):
            raise FeatscopeError(
                f"position {position} is outside layer {self.layer!r}'s map of size "
                f"{tuple(spatial)}: give {len(spatial)} coordinate(s), each 0 <= i < size"
            )
        return act[(slice(None), self.k) + position]


class ClassLogit(Objective):
    """The pre-softmax score of class ``k`` in the model's output (B, classes)."""

    def __init__(self, k: int, label: str | None = None):
        self.k = int(k)
        self.layers = frozenset({MODEL_OUTPUT})
        self.name = f"logit:{label or k}"

    def score(self, acts: Activations) -> torch.Tensor:
        logits = acts[MODEL_OUTPUT].reshape(acts[MODEL_OUTPUT].shape[0], -1)
        _check_feature(MODEL_OUTPUT, logits, self.k)
        return logits[:, self.k]


class ClassProbability(ClassLogit):
    """softmax(logits)[k]: the model's confidence in class ``k``."""

    def __init__(self, k: int, label: str | None = None):
        super().__init__(k, label)
        self.name = f"prob:{label or k}"

    def score(self, acts: Activations) -> torch.Tensor:
        logits = acts[MODEL_OUTPUT].reshape(acts[MODEL_OUTPUT].shape[0], -1)
        _check_feature(MODEL_OUTPUT, logits, self.k)
        return logits.softmax(dim=1)[:, self.k]


class Direction(Objective):
    """The dot product of ``layer``'s feature vectors with ``vector`` (C,), pooled over the map.

    With ``cosine=True`` the cosine similarity is used instead, so that only the direction of
    the activation matters, not its magnitude.
    """

    def __init__(self, layer: str, vector: torch.Tensor | Sequence[float], pool: Pool = "mean",
                 feature_axis: int = 1, cosine: bool = False):
        self.layer, self.pool, self.feature_axis, self.cosine = layer, pool, feature_axis, cosine
        self.vector = torch.as_tensor(vector, dtype=torch.float32).flatten()
        self.layers = frozenset({layer})
        self.name = f"direction({layer})"

    def score(self, acts: Activations) -> torch.Tensor:
        act = _features_first(acts[self.layer], self.feature_axis)
        if act.shape[1] != self.vector.numel():
            raise FeatscopeError(
                f"direction has {self.vector.numel()} components but layer {self.layer!r} has "
                f"{act.shape[1]} features"
            )
        vector = self.vector.to(act.device, act.dtype).reshape((1, -1) + (1,) * (act.dim() - 2))
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


# Lower-case constructors read well in user code: channel("conv1", 3) + 0.1 * neuron(...)
channel = Channel
neuron = Neuron
class_logit = ClassLogit
class_probability = ClassProbability
direction = Direction
custom = Custom


# The group key of class logits: the model output's features, read as they are.
_LOGITS = (MODEL_OUTPUT, None, 1, 0)


class BatchScorer:
    """Scores element i of a batch with ``objectives[i]``: ``scorer(acts) -> (B,)``.

    Channel objectives that share a layer and pooling, and class logits, are scored with one
    gather instead of B separate slices, which matters when a sheet renders dozens of units
    of one layer (or crop views multiply the batch). The
    grouping and its index tensors are built once, not at every step.
    """

    def __init__(self, objectives: Sequence[Objective]):
        self.objectives = list(objectives)
        groups: dict[tuple, list[int]] = {}
        for i, objective in enumerate(self.objectives):
            if type(objective) is Channel:
                key = (objective.layer, objective.pool, objective.feature_axis, objective.border)
                groups.setdefault(key, []).append(i)
            elif type(objective) is ClassLogit:  # MACO scores dozens of views per image
                groups.setdefault(_LOGITS, []).append(i)
        self.groups = groups
        grouped = {i for members in groups.values() for i in members}
        self.others = [i for i in range(len(self.objectives)) if i not in grouped]
        self._index_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._checked: set[tuple] = set()

    def _indices(self, key: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cache_key = (key, device)
        if cache_key not in self._index_cache:
            members = self.groups[key]
            rows = torch.tensor(members, device=device)
            features = torch.tensor([self.objectives[i].k for i in members], device=device)
            self._index_cache[cache_key] = (rows, features)
        return self._index_cache[cache_key]

    def __call__(self, acts: Activations) -> torch.Tensor:
        scores: list[torch.Tensor | None] = [None] * len(self.objectives)
        for key, members in self.groups.items():
            layer, pool, feature_axis, border = key
            act = _features_first(acts[layer], feature_axis)
            if key == _LOGITS:
                act = act.reshape(act.shape[0], -1)
            if (key, act.shape[1]) not in self._checked:
                for i in members:
                    _check_feature(layer, act, self.objectives[i].k)
                self._checked.add((key, act.shape[1]))
            rows, features = self._indices(key, act.device)
            fmap = act[rows, features]
            if border:
                fmap = fmap[(slice(None),) + (slice(border, -border),) * (fmap.dim() - 1)]
            values = fmap if key == _LOGITS else pool_map(fmap, pool)
            for i, value in zip(members, values.unbind(0)):
                scores[i] = value
        for i in self.others:
            scores[i] = self.objectives[i].score({k: v[i:i + 1] for k, v in acts.items()})[0]
        return torch.stack(scores)


def batch_scores(objectives: Sequence[Objective], acts: Activations) -> torch.Tensor:
    """Score element i of a batch with ``objectives[i]``: a (B,) tensor (see ``BatchScorer``)."""
    return BatchScorer(objectives)(acts)
