"""Objectives and terms: what a search maximizes, as small composable values.

An objective maps activations ``{layer path: (B, ...)}`` to one score per batch element (B,).
Objectives combine with ``+``, ``-`` and scalar ``*`` / ``/``::

    channel("_blocks.8", 5) - 0.5 * channel("_blocks.8", 7) - 50 * Closeness(photo)

Every combination is a weighted sum of *leaf terms* (``terms()``). Priors and penalties
(closeness to a start image, diversity between copies, ...) are terms of the same kind as
unit objectives; they set ``penalty`` so that the value a target reaches is reported
without them. A term may read the searched image itself under the pseudo-layer ``IMAGE``
instead of a model layer.

How a batch is scored is ``scoring.BatchScorer``'s business: a leaf shared by several
elements of a batch is evaluated once, on just those elements.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence

import torch

from ..engine.layout import Layout
from ..engine.probing import LayerInfo

IMAGE = "@image"  # pseudo-layer: the searched image (B, C, H, W) in [0, 1], before transforms


class Resident:
    """A constant tensor that an objective compares with activations or images, copied once to
    each device and dtype it meets: a copy to a GPU at every step would wait for the GPU, and
    a CUDA graph allows none."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor
        self._copies: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def like(self, other: torch.Tensor) -> torch.Tensor:
        """The tensor on ``other``'s device, in its dtype."""
        key = (other.device, other.dtype)
        if key not in self._copies:
            self._copies[key] = self.tensor.to(other.device, other.dtype)
        return self._copies[key]


class Activations(dict):
    """``{layer: (rows, ...)}`` as a batch scorer hands them to a term.

    ``views``: how many views of each element the model saw (rows = elements x views for
    model layers; the ``IMAGE`` entry has one row per element). ``batch``: the number of
    elements.
    """

    def __init__(self, data: Mapping[str, torch.Tensor] = (), *, views: int = 1,
                 batch: int | None = None):
        super().__init__(data)
        self.views = views
        self.batch = batch


ActivationMap = Mapping[str, torch.Tensor]


class Objective:
    """A differentiable score per batch element; subclasses implement ``score``.

    ``layers``: the layer paths it reads (``IMAGE`` for the searched image). ``per_view``:
    scored on every view of an element and averaged (False: once per element, reading the
    views itself). ``coupled``: an element's score depends on the other elements it is
    scored with, so they must share a batch. ``penalty``: a prior or penalty, left out of
    the value reported for a target.
    """

    layers: frozenset[str] = frozenset()
    name: str = "objective"
    per_view: bool = True
    coupled: bool = False
    penalty: bool = False

    def score(self, acts: ActivationMap) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, acts: ActivationMap) -> torch.Tensor:
        return self.score(acts)

    def terms(self) -> list[tuple[float, Objective]]:
        """The objective as a weighted sum of leaf terms: [(weight, leaf), ...]."""
        return [(1.0, self)]

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        """This objective resolved against the model: a class given by name looked up in
        ``class_names``, the layouts of the layers it reads taken from ``layers`` (what
        ``list_layers`` found: see ``binding.bind_objectives``)."""
        return self

    def layouts_needed(self) -> frozenset[str]:
        """The layers whose layout this objective still has to learn from the model."""
        return frozenset()

    def layout_of(self, layer: str) -> Layout | None:
        """The layout this objective reads ``layer`` with, once bound (None: not known)."""
        return None

    def batch_axis(self, layer: str) -> int:
        """Where the batch is in ``layer``'s output (1 for sequence-first tokens)."""
        layout = self.layout_of(layer)
        return layout.batch_axis if layout is not None else 0

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
    per_view = False

    def __init__(self, value: float):
        self.value = float(value)
        self.name = repr(self.value)

    def score(self, acts: ActivationMap) -> torch.Tensor:
        batch = getattr(acts, "batch", None)
        like = next(iter(acts.values()), None)
        if batch is None:
            batch = like.shape[0] if like is not None else 1
        device = like.device if like is not None else None
        return torch.full((batch,), self.value, device=device)


def as_objective(value: Objective | float) -> Objective:
    if isinstance(value, Objective):
        return value
    if isinstance(value, (int, float)):
        return Constant(value)
    raise TypeError(f"cannot combine an objective with {type(value).__name__}")


class Sum(Objective):
    def __init__(self, terms: Sequence[Objective]):
        self.parts = [t for term in terms
                      for t in (term.parts if isinstance(term, Sum) else [term])]
        self.layers = frozenset().union(*(t.layers for t in self.parts))
        self.name = " + ".join(t.name for t in self.parts).replace("+ -", "- ")
        self.coupled = any(t.coupled for t in self.parts)

    def score(self, acts: ActivationMap) -> torch.Tensor:
        return functools.reduce(operator.add, (t.score(acts) for t in self.parts))

    def terms(self) -> list[tuple[float, Objective]]:
        return [term for part in self.parts for term in part.terms()]

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        bound = [t.bind(class_names, layers) for t in self.parts]
        return self if all(b is t for b, t in zip(bound, self.parts)) else Sum(bound)

    def layouts_needed(self) -> frozenset[str]:
        return frozenset().union(*(t.layouts_needed() for t in self.parts))

    def layout_of(self, layer: str) -> Layout | None:
        return next((found for t in self.parts if (found := t.layout_of(layer)) is not None),
                    None)

    def batch_axis(self, layer: str) -> int:
        axes = {t.batch_axis(layer) for t in self.parts if layer in t.layers}
        return axes.pop() if len(axes) == 1 else 0


class Scaled(Objective):
    def __init__(self, inner: Objective, factor: float):
        self.inner, self.factor = inner, factor
        self.layers, self.coupled = inner.layers, inner.coupled
        self.name = f"-{inner.name}" if factor == -1.0 else f"{factor:g}*{inner.name}"

    def score(self, acts: ActivationMap) -> torch.Tensor:
        return self.factor * self.inner.score(acts)

    def terms(self) -> list[tuple[float, Objective]]:
        return [(self.factor * weight, leaf) for weight, leaf in self.inner.terms()]

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        bound = self.inner.bind(class_names, layers)
        return self if bound is self.inner else Scaled(bound, self.factor)

    def layouts_needed(self) -> frozenset[str]:
        return self.inner.layouts_needed()

    def layout_of(self, layer: str) -> Layout | None:
        return self.inner.layout_of(layer)

    def batch_axis(self, layer: str) -> int:
        return self.inner.batch_axis(layer)
