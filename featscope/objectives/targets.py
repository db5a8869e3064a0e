"""Target strings, as the command line takes them, parsed into objectives.

- ``LAYER:K``          channel K of LAYER (a ``named_modules()`` path), pooled
- ``LAYER:K@Y,X``      the neuron of channel K at one location (any number of coordinates)
- ``logit:K``          pre-softmax score of class K (a number or a class name)
- ``prob:K``           softmax probability of class K
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from ..engine.probing import resolve_layer
from ..errors import FeatscopeError
from .base import Objective
from .features import Channel, ClassLogit, ClassProbability, Neuron, Pool, class_index

SYNTAX = "LAYER:K, LAYER:K@Y,X, logit:K or prob:K (K a number, or a class name for logit/prob)"
_INT = re.compile(r"^\d+$")


def _feature(text: str, target: str) -> int:
    if not _INT.match(text):
        raise FeatscopeError(f"bad target {target!r}: the feature index {text!r} must be a "
                             f"non-negative whole number. Targets look like {SYNTAX}")
    return int(text)


def parse_target(target: str, model: nn.Module, class_names: Sequence[str] | None = None,
                 pool: Pool = "mean", feature_axis: int = 1, border: int = 0) -> Objective:
    """One target string -> its objective; layers are checked against ``model``."""
    text = target.strip()
    head, sep, rest = text.partition(":")
    if sep and head in ("logit", "prob"):
        if not rest:
            raise FeatscopeError(f"bad target {target!r}: give a class after '{head}:'")
        index, label = class_index(rest, class_names)
        if class_names is not None and index >= len(class_names):
            raise FeatscopeError(f"class {index} is out of range: this model has "
                                 f"{len(class_names)} classes, valid 0..{len(class_names) - 1}")
        kind = ClassLogit if head == "logit" else ClassProbability
        return kind(index, label)
    where, at, position = text.partition("@")
    layer, sep, feature = where.rpartition(":")
    if not sep or not layer or not feature:
        raise FeatscopeError(f"bad target {target!r}; targets look like {SYNTAX}")
    resolve_layer(model, layer)
    k = _feature(feature, target)
    if not at:
        return Channel(layer, k, pool=pool, feature_axis=feature_axis, border=border)
    coords = position.split(",")
    if not all(_INT.match(c.strip()) for c in coords):
        raise FeatscopeError(f"bad target {target!r}: the location after '@' must be whole "
                             "numbers separated by commas, e.g. LAYER:3@7,7")
    return Neuron(layer, k, [int(c) for c in coords], feature_axis=feature_axis)
