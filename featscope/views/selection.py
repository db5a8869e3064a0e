"""Which units and layers to show: unit selections such as ``0:64`` or ``3,17,40``, and
layers spread evenly over a network's depth."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..engine.probing import LayerInfo
from ..errors import FeatscopeError

_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")
_NUMBERED = re.compile(r"^(.+\.)?\d+$")  # the N-th module of a sequence: "_blocks.3", "3"


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


def spread_layers(infos: Sequence[LayerInfo], count: int) -> list[str]:
    """``count`` layers spread evenly from the first to the last block of the network.

    Candidates are layers with a 2-D feature map (C, H, W). Where the network is a sequence
    of blocks (numbered modules with submodules, e.g. ``_blocks.3`` or ``layer2.1``), the
    blocks are the candidates, because their outputs are what the next stage sees; otherwise
    every such layer is.
    """
    spatial = [info for info in infos if info.name and len(info.shape) == 3]
    containers = _containers(infos)
    blocks = [info for info in spatial
              if info.name in containers and _NUMBERED.match(info.name)]
    candidates = blocks if len(blocks) >= count else spatial
    if not candidates:
        raise FeatscopeError("this model has no layer with a 2-D feature map (C, H, W); "
                             "give --layers explicitly")
    if count >= len(candidates):
        return [info.name for info in candidates]
    step = (len(candidates) - 1) / max(1, count - 1)
    return [candidates[round(i * step)].name for i in range(count)]


def _containers(infos: Sequence[LayerInfo]) -> set[str]:
    names = [info.name for info in infos]
    return {name for name in names if any(other.startswith(name + ".") for other in names)}
