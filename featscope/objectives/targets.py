"""Target strings, as the command line takes them, parsed into objectives.

- ``LAYER:K``             feature K of LAYER (a ``named_modules()`` path), pooled over its map
                          or its patch tokens
- ``LAYER:K@Y,X``         the neuron of feature K at one location of the map or patch grid
                          (any number of coordinates)
- ``LAYER:K@cls``         feature K at the class token of a transformer layer
- ``LAYER:headH@FROM/TO`` attention head H's weight from token FROM to token TO (each ``cls``
                          or Y,X); ``LAYER:headH@FROM``: FROM's attention to the other tokens
- ``logit:K``             pre-softmax score of class K (a number or a class name)
- ``prob:K``              softmax probability of class K

``layout`` and ``prefix`` declare how the targets' layers are read (``--layout``,
``--prefix-tokens``); by default the model says (``engine.layout``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from ..engine.probing import resolve_layer
from ..errors import FeatscopeError
from .attention import Attention, attention_reads
from .base import Objective
from .features import CLS, Channel, ClassLogit, ClassProbability, Neuron, Pool, class_index

SYNTAX = ("LAYER:K, LAYER:K@Y,X, LAYER:K@cls, LAYER:headH@FROM/TO (attention), logit:K or "
          "prob:K (K a number, or a class name for logit/prob)")
_INT = re.compile(r"^\d+$")
_HEAD = re.compile(r"^head(\d+)$")


def _feature(text: str, target: str) -> int:
    if not _INT.match(text):
        raise FeatscopeError(f"bad target {target!r}: the feature index {text!r} must be a "
                             f"non-negative whole number. Targets look like {SYNTAX}")
    return int(text)


def _position(text: str, target: str) -> str | tuple[int, ...]:
    """``cls`` or whole numbers separated by commas."""
    text = text.strip()
    if text.lower() == CLS:
        return CLS
    coords = text.split(",")
    if not all(_INT.match(c.strip()) for c in coords):
        raise FeatscopeError(f"bad target {target!r}: a location after '@' is 'cls' or whole "
                             "numbers separated by commas, e.g. LAYER:3@7,7")
    return tuple(int(c) for c in coords)


def parse_target(target: str, model: nn.Module, class_names: Sequence[str] | None = None,
                 pool: Pool = "mean", border: int = 0, layout: str | None = None,
                 prefix: int | None = None) -> Objective:
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
    attention = _HEAD.match(feature)
    if attention:
        source, slash, to = position.partition("/")
        if not at or not source:
            raise FeatscopeError(f"bad target {target!r}: an attention target names the "
                                 "attending token, e.g. LAYER:head0@cls/3,4 or LAYER:head0@cls")
        return Attention(layer, int(attention.group(1)), _position(source, target),
                         _position(to, target) if slash else None, attention_reads(model, layer),
                         prefix=prefix)
    k = _feature(feature, target)
    if not at:
        return Channel(layer, k, pool=pool, border=border, layout=layout, prefix=prefix)
    return Neuron(layer, k, _position(position, target), layout=layout, prefix=prefix)
