"""Tabular feature vectors (F,), each feature kept inside its [low, high] bounds; written as
CSV and JSON with the features' names."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FeatscopeError
from ..files.writing import write_text
from ..params.base import Parameterization
from ..randomness import UnitRandom, per_element

# Features that a bounds file does not name are searched within this range: a few standard
# deviations of a standardized feature.
DEFAULT_RANGE = (-3.0, 3.0)


@dataclass
class Vector:
    """Feature vectors (F,); bounds are kept by reparameterization, so every step stays
    feasible: both bounds finite: x = low + (high - low) * sigmoid(v); only low:
    x = low + softplus(v); only high: x = high - softplus(v); none: x = v.
    """

    names: list[str] | None = None
    low: torch.Tensor | None = None  # (F,), -inf where unbounded
    high: torch.Tensor | None = None  # (F,), +inf where unbounded
    name: str = "vector"

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None

    def parameterize(self, shape: tuple[int, ...], random: UnitRandom | torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        features = shape[-1]
        low = self._bound(self.low, features, -math.inf).to(device)
        high = self._bound(self.high, features, math.inf).to(device)
        draws = per_element(random, shape[0], *shape[1:], normal=True)
        values = draws.mul_(sd).to(device).requires_grad_(True)
        only_low, only_high = low.isfinite(), high.isfinite()
        both = only_low & only_high
        safe_low, safe_high = low.nan_to_num(0, 0, 0), high.nan_to_num(0, 0, 0)

        def value() -> torch.Tensor:
            sig = safe_low + (safe_high - safe_low) * torch.sigmoid(values)
            soft = torch.nn.functional.softplus(values)
            return torch.where(both, sig, torch.where(only_low, safe_low + soft,
                               torch.where(only_high, safe_high - soft, values)))

        return Parameterization([values], value, "bounded vector")

    def _bound(self, bound: torch.Tensor | None, features: int, fill: float) -> torch.Tensor:
        if bound is None:
            return torch.full((features,), fill)
        if bound.numel() != features:
            raise FeatscopeError(f"the bounds give {bound.numel()} features but the model's "
                                 f"input has {features}")
        return bound.float()

    def for_model(self, features: int, model_names: list[str] | None = None
                  ) -> tuple[Vector, str | None]:
        """These bounds completed for a model input of ``features`` features, and a note
        naming the features that got ``DEFAULT_RANGE`` because the bounds file omits them.

        Rows are matched to the model's feature names when it has them, otherwise they are
        the first features in order.
        """
        names = list(model_names) if model_names else None
        given = list(self.names or [])
        if names is None:
            if len(given) > features:
                raise FeatscopeError(f"the bounds name {len(given)} features but the model's "
                                     f"input has {features}")
            names = given + [f"x{i}" for i in range(len(given), features)]
        unknown = [n for n in given if n not in names]
        if unknown:
            raise FeatscopeError(f"the bounds name feature(s) {', '.join(unknown)} that the model "
                                 f"does not have; its features: {', '.join(names)}")
        low = torch.full((features,), DEFAULT_RANGE[0])
        high = torch.full((features,), DEFAULT_RANGE[1])
        for row, name in enumerate(given):
            low[names.index(name)], high[names.index(name)] = self.low[row], self.high[row]
        missing = [n for n in names if n not in given]
        note = None if not missing else (
            f"{len(missing)} feature(s) have no bounds in the file ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}): searched within "
            f"[{DEFAULT_RANGE[0]:g}, {DEFAULT_RANGE[1]:g}]; name them in the bounds file to "
            "change that")
        return Vector(names, low, high), note

    def feature_names(self, features: int) -> list[str]:
        return list(self.names) if self.names else [f"x{i}" for i in range(features)]

    def save(self, x: torch.Tensor, folder: Path, stem: str, **extras) -> dict[str, str]:
        """x: (F,) -> CSV (feature,value) and JSON {feature: value}."""
        values = x.detach().cpu().float().tolist()
        names = self.feature_names(len(values))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["feature", "value"])
        writer.writerows(zip(names, values))
        csv_path = write_text(buffer.getvalue(), folder / f"{stem}.csv")
        json_path = write_text(json.dumps(dict(zip(names, values)), indent=2) + "\n",
                               folder / f"{stem}.json")
        return {"csv": str(csv_path), "json": str(json_path)}


def read_bounds(path: str | Path) -> Vector:
    """Bounds from a CSV with columns ``feature,low,high`` (empty cell: unbounded) or a JSON
    object ``{"feature": [low, high], ...}`` (null: unbounded), in the model's feature order."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix == ".json":
            content = json.loads(text)
            if not isinstance(content, dict) or not all(
                    isinstance(v, list) and len(v) == 2 for v in content.values()):
                raise ValueError("the JSON must map each feature to [low, high]")
            rows = [(k, *v) for k, v in content.items()]
        else:
            rows = [(r["feature"], r["low"], r["high"]) for r in csv.DictReader(io.StringIO(text))]
        names = [str(r[0]) for r in rows]
        low = torch.tensor([_number(r[1], -math.inf) for r in rows])
        high = torch.tensor([_number(r[2], math.inf) for r in rows])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise FeatscopeError(
            f"cannot read bounds file {str(path)!r} ({error.__class__.__name__}: {error}). "
            "Expected a CSV with columns feature,low,high or a JSON "
            '{"feature": [low, high]}; leave a bound empty/null for none') from None
    if not rows:
        raise FeatscopeError(f"bounds file {str(path)!r} lists no features")
    bad = [n for n, lo, hi in zip(names, low.tolist(), high.tolist()) if not lo < hi]
    if bad:
        raise FeatscopeError(f"bounds file {str(path)!r}: low must be below high for "
                             f"feature(s) {', '.join(bad)}")
    return Vector(names, low, high)


def _number(cell: object, missing: float) -> float:
    return missing if cell is None or str(cell).strip() == "" else float(cell)
