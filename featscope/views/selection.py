"""Which units and layers to show: unit selections such as ``0:64`` or ``3,17,40``, and
layers spread evenly over a network's depth."""

from __future__ import annotations

import re

import torch

from ..engine.probing import (  # noqa: F401
    MODEL_OUTPUT,
    LayerInfo,
    every_layer,
    list_layers,
    resolve_layer,
    spread_layers,
)
from ..errors import FeatscopeError
from ..models import LoadedModel

_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")


def parse_units(spec: str | None, count: int, every: bool = False, default: int = 64) -> list[int]:
    """Unit indices from ``"0:64"`` (a half-open range), ``"3,17,40"`` or ``every`` unit.

    ``count`` is the number of features of the layer; ``None`` means the first ``default``.
    A range past the last feature stops there (``select_units`` says so).
    """
    return select_units(spec, count, every, default)[0]


def select_units(spec: str | None, count: int, every: bool = False,
                 default: int = 64) -> tuple[list[int], str | None]:
    """``parse_units``, and a note when a range was cut at the layer's last feature."""
    if every:
        return list(range(count)), None
    if spec is None:
        return list(range(min(default, count))), None
    note = None
    ranged = _RANGE.match(spec)
    if ranged:
        start = int(ranged.group(1) or 0)
        stop = int(ranged.group(2)) if ranged.group(2) else count
        if stop > count:
            note = (f"--units {spec.strip()} goes past this layer's {count} features: rendering "
                    f"units {start}..{count - 1}")
            stop = count
        units = list(range(start, stop))
    else:
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise FeatscopeError(f"bad --units {spec!r}: give a range like 0:64 or a list like "
                                 "3,17,40 (whole numbers)")
        units = list(dict.fromkeys(int(p) for p in parts))
    if not units:
        raise FeatscopeError(f"--units {spec!r} selects no unit; this layer has {count} "
                             f"features, valid 0..{count - 1}")
    outside = [u for u in units if u >= count]
    if outside:
        raise FeatscopeError(f"unit {outside[0]} is out of range: this layer has {count} "
                             f"features, valid 0..{count - 1}")
    return units, note


def layer_infos(loaded: LoadedModel) -> dict[str, LayerInfo]:
    """Every probe-able layer with its output shape, from one forward pass."""
    example = torch.zeros((1, *loaded.input_shape))
    return {info.name: info for info in list_layers(loaded.module, example)}


def layer_features(loaded: LoadedModel, layer: str,
                   infos: dict[str, LayerInfo] | None = None, order: str | None = None,
                   prefix: int | None = None) -> int:
    """The number of features (channels) of ``layer``, read with the layout ``order`` and
    ``prefix`` declared (found from the model when None)."""
    resolve_layer(loaded.module, layer)
    info = (infos or layer_infos(loaded)).get(layer)
    if info is None or not info.shape:
        raise FeatscopeError(f"layer {layer!r} did not produce a tensor on a forward pass; "
                             "choose another from `featscope layers`")
    return info.features(order, prefix)


def choose_layers(loaded: LoadedModel, layers: str | None, count: int, per_layer: int | None,
                  infos: dict[str, LayerInfo] | None = None, order: str | None = None,
                  prefix: int | None = None) -> dict[str, list[int]]:
    """{layer: its first ``per_layer`` units (all with None)}, for the given comma-separated
    layers or ``count`` layers spread evenly over the depth (read with the declared layout
    ``order`` and ``prefix``, if any)."""
    if per_layer is not None and per_layer < 1:
        raise FeatscopeError(f"--per-layer must be at least 1 (got {per_layer})")
    infos = infos or layer_infos(loaded)
    if layers:
        names = [name.strip() for name in layers.split(",") if name.strip()]
    else:
        if count < 1:
            raise FeatscopeError(f"--count must be at least 1 (got {count})")
        names = spread_layers(list(infos.values()), count)
    chosen = {}
    for name in names:
        features = layer_features(loaded, name, infos, order, prefix)
        chosen[name] = list(range(features if per_layer is None else min(per_layer, features)))
    return chosen


DEFAULT_CLASSES = 8


def class_targets(loaded: LoadedModel, spec: str | None,
                  infos: dict[str, LayerInfo] | None = None) -> list[str]:
    """Class targets ``logit:K`` from "1,207,goldfinch", a range "0:8" or "all" (default: 8
    classes spread over all of them)."""
    output = (infos or layer_infos(loaded)).get(MODEL_OUTPUT)
    count = output.shape[-1] if output is not None and output.shape else None
    if not count:
        raise FeatscopeError("this model's output is not a tensor of class scores")
    if spec is None:
        step = max(1, count // DEFAULT_CLASSES)
        items = [str(k) for k in range(0, count, step)][:DEFAULT_CLASSES]
    elif spec.strip() == "all":
        items = [str(k) for k in range(count)]
    elif ":" in spec and "," not in spec:
        items = [str(k) for k in parse_units(spec, count)]
    else:
        items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise FeatscopeError(f"--classes {spec!r} names no class")
    return [f"logit:{item}" for item in items]
