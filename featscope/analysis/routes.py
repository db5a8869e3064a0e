"""The route check: does a visualization travel through the network the way the natural images
that excite its unit do?

Geirhos et al. (ICML 2024) built networks whose units show anything at all in their feature
visualizations while behaving as before on natural images, and proposed a sanity check: follow
an image's activations layer by layer up to the unit and compare the path of the visualization
with the paths of the unit's top natural images. ``trace_routes`` does this for a batch of
visualizations at once.

For each layer on the path (the layers that run before the unit's, ``path_layers``), every
image becomes one vector: the layer's feature map averaged over its positions (rows and
columns, tokens), (C,), centred on the mean over all the natural images. Similarity is the
cosine of two such vectors. Per layer, three numbers:

- ``visualization``: the visualization's mean similarity to the unit's ``top`` natural images
  (those with the highest objective);
- ``top``: the top images' mean similarity to each other (what sharing the route looks like);
- ``unrelated``: the mean similarity of unrelated natural images (a spread sample of those
  outside the top) to the top images (what another route looks like).

``score`` places the visualization between the two references: 0 where it is as similar to the
top images as unrelated images are, 1 where it is as similar as they are to each other (NaN
where the layer does not tell them apart: the top images are less than ``MIN_SPAN`` more alike
than unrelated ones). ``agreement`` is the mean score over the quarter of
the path nearest the unit (at least the last layer): the unit is computed from those layers, so
a visualization that excites it the way natural images do must resemble them there (in early
layers even honest visualizations look unlike photographs, as Geirhos et al. found). A
visualization is ``flagged`` when its agreement is below 1/2, i.e. there it is nearer the
unrelated images than the top images: it excites the unit by another route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine.device import module_device
from ..engine.probing import MODEL_OUTPUT, LayerInfo, every_layer, list_layers
from ..errors import FeatscopeError
from ..files.images import fit
from ..models import LoadedModel
from ..objectives.base import Objective
from ..objectives.binding import bind_objectives
from .metrics import every_score, probed_batches

TOP = 5  # top natural images per unit (and as many unrelated ones)
MIN_NATURALS = 4  # natural images the check needs at least (2 top, 2 unrelated)
FLAG_BELOW = 0.5  # agreement under which a visualization is flagged
# How much more alike (mean cosine) the top natural images must be than unrelated ones are to
# them for a layer to score: with a smaller gap, sampling noise in either mean (a few images
# each) would be divided by almost nothing, and a visualization's score could swing to ±100.
MIN_SPAN = 0.05


@dataclass(frozen=True)
class Route:
    """One visualization's path against its unit's top natural images: per layer of
    ``layers`` (low to high), (L,) mean similarities (see the module docstring)."""

    layers: tuple[str, ...]
    visualization: torch.Tensor  # (L,) to the top natural images
    top: torch.Tensor  # (L,) among the top natural images
    unrelated: torch.Tensor  # (L,) of unrelated natural images to the top ones

    @property
    def score(self) -> torch.Tensor:
        """(L,) 0: as similar to the top images as unrelated images are; 1: as they are to each
        other; NaN where the top images are less than ``MIN_SPAN`` more alike than unrelated
        ones (there the layer tells the two routes apart too little to place anything)."""
        span = self.top - self.unrelated
        value = (self.visualization - self.unrelated) / span.clamp_min(MIN_SPAN)
        return torch.where(span >= MIN_SPAN, value, torch.full_like(value, float("nan")))

    @property
    def near(self) -> int:
        """How many of the layers nearest the unit ``agreement`` averages over: the last
        quarter of the path, at least its last layer."""
        return max(1, len(self.layers) // 4)

    @property
    def agreement(self) -> float:
        """The mean score over the ``near`` layers (NaN if none tells)."""
        near = self.score[-self.near:]
        near = near[~near.isnan()]
        return float(near.mean()) if len(near) else float("nan")

    @property
    def flagged(self) -> bool:
        return self.agreement < FLAG_BELOW  # NaN compares False: not enough evidence

    def to_dict(self) -> dict:
        def numbers(values: torch.Tensor) -> list[float | None]:
            return [None if v != v else round(float(v), 4) for v in values.tolist()]
        return {"layers": list(self.layers), "score": numbers(self.score),
                "visualization": numbers(self.visualization), "top": numbers(self.top),
                "unrelated": numbers(self.unrelated),
                "agreement": None if self.agreement != self.agreement
                else round(self.agreement, 4), "flagged": self.flagged}


def skipped_note(count: int, source: str) -> str:
    """The line that says the route check did not run: ``count`` natural images, from
    ``source`` (e.g. "--natural"), are fewer than it needs."""
    return (f"route check skipped: it needs at least {MIN_NATURALS} natural images in {source} "
            f"(found {count})")


def flagged_note(names: Sequence[str], routes: Sequence[Route | None], named: int = 8) -> str:
    """The line that sums up the routes of the visualizations ``names``: how many take another
    route than their unit's top natural images (the first ``named`` of them by name), and how
    many were not checked (None: no layer runs before their unit's)."""
    checked = [(name, route) for name, route in zip(names, routes) if route is not None]
    unchecked = len(routes) - len(checked)
    if not checked:
        return (f"route check: none of the {unchecked} visualizations has a layer with a "
                "feature map before its unit's; nothing to check")
    flagged = [name for name, route in checked if route.flagged]
    listed = f" ({', '.join(flagged[:named])}{', ...' if len(flagged) > named else ''})" \
        if flagged else ""
    return (f"route check: {len(flagged)} of {len(checked)} visualizations travel another route "
            f"than their unit's top natural images{listed}"
            + (f"; {unchecked} not checked (no layer with a feature map runs before their "
               "unit's)" if unchecked else ""))


def path_layers(infos: Sequence[LayerInfo], objective: Objective) -> list[str]:
    """The layers an atlas shows (``every_layer``: the network's blocks, or every layer with a
    2-D feature map) that finish before the first layer ``objective`` reads (all of them for
    the model's output), low to high."""
    path = _path(infos, objective)
    if not path:
        raise FeatscopeError(f"no layer with a feature map runs before {objective.name}: "
                             "there is no route to check")
    return path


def _path(infos: Sequence[LayerInfo], objective: Objective) -> list[str]:
    """``path_layers``, empty where there are none."""
    order = [info.name for info in infos]
    reads = [order.index(name) for name in objective.layers if name in order and name]
    end = min(reads) if reads and MODEL_OUTPUT not in objective.layers else len(order)
    earlier = set(order[:end]) - set(objective.layers)
    return [name for name in every_layer(infos) if name in earlier]


def _pooled(model: LoadedModel, images: torch.Tensor, layers: Sequence[str],
            infos: dict[str, LayerInfo], objectives: Sequence[Objective] = ()
            ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """{layer: (N, C)} each image's feature map averaged over its positions, and, from the
    same pass, (U, N) each of the (bound) ``objectives`` on each image (None without them)."""
    read = sorted(set(layers).union(*(objective.layers for objective in objectives)))
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    scored: list[torch.Tensor] = []  # (U, B) per batch
    for _, acts in probed_batches(model, images, read):
        for name in layers:
            fmap = infos[name].layout().feature_map(acts[name]).float()  # (B, C, *S)
            parts[name].append(fmap.flatten(2).mean(2).cpu() if fmap.dim() > 2 else fmap.cpu())
        if objectives:
            scored.append(every_score(objectives, acts).cpu())
    pooled = {name: torch.cat(values) for name, values in parts.items()}
    return pooled, (torch.cat(scored, 1) if scored else None)


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, B) cosine similarities of the rows of ``a`` and ``b`` (0 for a zero vector)."""
    return F.normalize(a, dim=1, eps=1e-12) @ F.normalize(b, dim=1, eps=1e-12).T


def _layer_infos(model: LoadedModel) -> list[LayerInfo]:
    example = torch.zeros((1, *model.input_shape), device=module_device(model.module))
    return list_layers(model.module, model.normalization.to(example.device)(example))


@dataclass(frozen=True)
class NaturalPaths:
    """Natural images as the route check (and the activation ratio) reads them for some
    units, from one pass through the model: each unit's score on each image and each image's
    pooled feature map at every layer on the units' paths. Read once (``read_naturals``) and
    ``select`` the units of each batch of visualizations measured against them."""

    paths: tuple[tuple[str, ...], ...]  # (U,) each unit's path_layers (empty: none)
    scores: torch.Tensor  # (U, N) unit u on natural image n
    pooled: dict[str, torch.Tensor]  # {layer: (N, C)} the feature map averaged over positions

    def __len__(self) -> int:
        """How many natural images."""
        return self.scores.shape[1]

    def select(self, units: slice) -> NaturalPaths:
        """The same natural images, for the units ``units`` (a slice of these)."""
        return NaturalPaths(self.paths[units], self.scores[units], self.pooled)


def read_naturals(model: LoadedModel, objectives: Sequence[Objective],
                  naturals: Sequence[torch.Tensor]) -> NaturalPaths:
    """``naturals`` ((C, H, W) images of any size, fitted to the input size) as the route
    check reads them for ``objectives``, in one pass through the model."""
    if len(naturals) == 0:
        raise FeatscopeError("no natural images to compare with")
    objectives = bind_objectives(objectives, model.module, model.input_shape, model.class_names)
    infos = _layer_infos(model)
    paths = tuple(tuple(_path(infos, objective)) for objective in objectives)
    layers = sorted(set().union(*paths), key=[info.name for info in infos].index)
    size = tuple(model.input_shape[1:])
    stack = torch.stack([fit(n, size) for n in naturals])  # (N, C, H, W)
    pooled, scores = _pooled(model, stack, layers, {info.name: info for info in infos},
                             objectives)
    return NaturalPaths(paths, scores, pooled)


def trace_routes(model: LoadedModel, objectives: Sequence[Objective], images: torch.Tensor,
                 naturals: Sequence[torch.Tensor] | NaturalPaths,
                 top: int = TOP) -> list[Route | None]:
    """The route of visualization i (``images`` (B, C, H, W) in [0, 1]) against the top
    natural images of ``objectives[i]``, among ``naturals`` ((C, H, W) images of any size, or
    those images already read for these objectives, ``read_naturals``); None where no layer
    runs before the unit's (there is no route to check, ``path_layers``). Needs at least
    ``MIN_NATURALS`` natural images; ``top`` shrinks to half of them where there are fewer
    than 2 × ``top``."""
    if len(objectives) != images.shape[0]:
        raise FeatscopeError(f"{len(objectives)} objectives for {images.shape[0]} images")
    if len(naturals) < MIN_NATURALS:
        raise FeatscopeError(f"the route check needs at least {MIN_NATURALS} natural images (the "
                             f"unit's top ones and unrelated ones); got {len(naturals)}")
    read = naturals if isinstance(naturals, NaturalPaths) \
        else read_naturals(model, objectives, naturals)
    if len(read.paths) != len(objectives):
        raise FeatscopeError(f"natural images read for {len(read.paths)} units, "
                             f"measured on {len(objectives)}")
    top = max(2, min(top, len(read) // 2))
    layers = [name for name in read.pooled if any(name in path for path in read.paths)]
    if not layers:
        return [None] * len(objectives)
    infos = {info.name: info for info in _layer_infos(model)}
    drawn, _ = _pooled(model, images, layers, infos)
    natural = read.pooled
    centre = {name: natural[name].mean(0) for name in layers}
    routes: list[Route | None] = []
    for i, path in enumerate(read.paths):
        if not path:
            routes.append(None)
            continue
        order = read.scores[i].argsort(descending=True)
        best, rest = order[:top], order[top:]
        # Unrelated: spread evenly over the others, from just below the top to the least.
        unrelated = rest[torch.linspace(0, len(rest) - 1, min(top, len(rest))).round().long()]
        own, among, other = [], [], []
        for name in path:
            tops = natural[name][best] - centre[name]
            own.append(_cosines((drawn[name][i] - centre[name])[None], tops).mean())
            pairs = _cosines(tops, tops)
            among.append((pairs.sum() - pairs.diagonal().sum()) / (top * (top - 1)))
            other.append(_cosines(natural[name][unrelated] - centre[name], tops).mean())
        routes.append(Route(tuple(path), torch.stack(own), torch.stack(among),
                            torch.stack(other)))
    return routes
