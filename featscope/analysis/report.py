"""What is measured of each visualization, in the form ``summary.json``'s rows carry it: a
``metrics`` mapping (name -> value; None where a measurement does not apply to the unit) and,
where the route check ran, a ``route``. ``featscope evaluate`` and the gallery both measure
through ``measure`` and write through ``Measured``, so their rows read alike:

- ``robustness``: the objective under random small transforms over its value on the image;
- ``activation_ratio`` (given natural images): over its maximum on them;
- ``route_agreement`` and ``route_flagged`` (given at least ``MIN_NATURALS`` natural images):
  the route check, None where it did not run or, for ``route_flagged``, found no evidence
  (so that its mean is the share of the units with evidence that are flagged);
- ``top1_full``, ``top5_64px``, ... (given a judge): whether another classifier ranks a class
  target's class first (top-1) or among its first five (top-5), at full size and as 64 and
  48 px thumbnails; None for targets that are not classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import FeatscopeError
from ..models import LoadedModel, load_model
from ..objectives.base import Objective
from ..objectives.features import ClassLogit
from .metrics import (
    activation_ratio,
    check_judge,
    robustness,
    transferability,
)
from .routes import MIN_NATURALS, NaturalPaths, Route, read_naturals, trace_routes

DRAWS = 8  # random transforms that robustness averages over


def classes_of(objectives: Sequence[Objective]) -> list[int | None]:
    """The class each objective maximizes (logit:K, prob:K), what a judge measures; None for
    other objectives."""
    return [o.k if isinstance(o, ClassLogit) else None for o in objectives]


def load_judge(name: str, loaded: LoadedModel, objectives: Sequence[Objective]) -> LoadedModel:
    """The classifier ``name`` that judges the class images of ``loaded``, after checking that
    it can: some objectives are classes, within the judge's classes where it names them, and
    it reads images of as many channels. Call it before the work that makes the images, so
    that bad input fails first."""
    classes = [k for k in classes_of(objectives) if k is not None]
    if not classes:
        raise FeatscopeError("--judge measures class targets (logit:K, prob:K); there are none")
    judge = load_model(name)
    check_judge(judge, loaded.input_shape[0], classes)
    return judge


@dataclass
class Measured:
    """Per visualization, in the order measured: its metrics and its route (None: not
    checked)."""

    metrics: list[dict[str, float | bool | None]]
    routes: list[Route | None] = field(default_factory=list)
    traced: bool = False  # whether the route check ran (a unit's route may still be None)

    def __post_init__(self) -> None:
        self.routes = self.routes or [None] * len(self.metrics)

    def add(self, name: str, values: Sequence[float | bool | None]) -> None:
        """A metric of every visualization (NaN floats are kept as None)."""
        for metrics, value in zip(self.metrics, values, strict=True):
            metrics[name] = _number(value)

    def add_routes(self, routes: Sequence[Route | None]) -> None:
        """The route of every visualization (None: not checked), its agreement and whether it
        is flagged (None without evidence)."""
        self.routes, self.traced = list(routes), True
        self.add("route_agreement", [None if r is None else r.agreement for r in routes])
        self.add("route_flagged", [None if r is None or math.isnan(r.agreement) else r.flagged
                                   for r in routes])

    def row(self, i: int) -> dict:
        """The fields of visualization i's summary row: ``metrics`` and ``route`` (None where
        not checked), replacing those of an earlier measurement."""
        route = self.routes[i]
        return {"metrics": dict(self.metrics[i]),
                "route": None if route is None else route.to_dict()}

    def means(self) -> dict[str, float | None]:
        """Each metric's mean over the visualizations it applies to (True counts as 1)."""
        names = dict.fromkeys(name for metrics in self.metrics for name in metrics)
        means = {}
        for name in names:
            values = [float(m[name]) for m in self.metrics if m.get(name) is not None]
            means[name] = round(sum(values) / len(values), 4) if values else None
        return means


def measure(loaded: LoadedModel, objectives: Sequence[Objective], images: torch.Tensor, *,
            draws: int = DRAWS, naturals: Sequence[torch.Tensor] | NaturalPaths | None = None,
            ratio: bool = True, judge: LoadedModel | None = None) -> Measured:
    """Robustness of visualization i (``images`` (B, C, H, W) in [0, 1]) on ``objectives[i]``;
    with ``naturals`` ((C, H, W) images, or those images already read for these objectives,
    ``read_naturals``) the activation ratio (unless not ``ratio``: the gallery has its own,
    over every image of its folder) and, from ``MIN_NATURALS`` of them, the route check; with
    a ``judge`` (``load_judge``) the transfer of the class targets, if there are any."""
    measured = Measured([{} for _ in objectives])
    measured.add("robustness", robustness(loaded, objectives, images, draws=draws).tolist())
    if naturals is not None:
        if not isinstance(naturals, NaturalPaths):  # one pass reads them for both
            naturals = read_naturals(loaded, objectives, naturals)
        if ratio:
            measured.add("activation_ratio", activation_ratio(
                loaded, objectives, images, scores=naturals.scores).tolist())
        if len(naturals) >= MIN_NATURALS:
            measured.add_routes(trace_routes(loaded, objectives, images, naturals))
    if judge is not None and any(k is not None for k in classes_of(objectives)):
        classes = classes_of(objectives)
        keep = [i for i, k in enumerate(classes) if k is not None]
        transfer = transferability(judge, [classes[i] for i in keep], images[keep])
        for k in (1, 5):
            for view, hits in transfer.top(k).items():
                values: list[bool | None] = [None] * len(objectives)
                for i, hit in zip(keep, hits.tolist()):
                    values[i] = bool(hit)
                measured.add(f"top{k}_{view}", values)
    return measured


def _number(value: float | bool | None) -> float | bool | None:
    if isinstance(value, bool) or value is None:
        return value
    return None if math.isnan(value) else round(float(value), 4)
