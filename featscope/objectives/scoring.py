"""Scoring a batch: element i of the batch with ``objectives[i]``, each term evaluated once.

Each objective is a weighted sum of leaf terms (``Objective.terms()``). The scorer collects
the leaves of the whole batch once, when it is built:

- channel features of one layer (same pooling and layout: its map or its patch tokens,
  features second) and class logits are read with one gather for all the elements that use
  them, instead of B separate slices, which matters when a sheet renders dozens of units of
  one layer or crop views multiply the rows;
- any other leaf shared by several elements (the same object: a custom prior, one start
  image's closeness, a target's diversity) is evaluated once, on just those elements' rows,
  not once per element;
- a leaf read from model layers is scored on every view of an element and averaged over
  them; a leaf that reads the searched image (``IMAGE``) sees one row per element. A leaf
  that reads sequence-first tokens (T, B, C) gets its elements' rows along axis 1.

``evaluate`` returns the search objective (every term) and the target value (without
penalties), which is what a search reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ..engine.probing import MODEL_OUTPUT
from .base import IMAGE, Activations, Objective
from .features import Channel, ClassLogit, check_feature, pool_map


@dataclass
class _Leaf:
    term: Objective
    elements: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


@dataclass
class Scores:
    total: torch.Tensor  # (B,) every term: what the search maximizes
    target: torch.Tensor  # (B,) without penalties and priors: what is reported
    depends: torch.Tensor  # (B,) bool: the element's value has a gradient path to the input

    def detached(self) -> Scores:
        """The same values without their autograd graph."""
        return Scores(self.total.detach(), self.target.detach(), self.depends.detach())


def _group_key(term: Objective) -> tuple | None:
    if type(term) is Channel:
        return ("channel", term.layer, term.pool, term.layout_key, term.border)
    if type(term) is ClassLogit and term.k is not None:
        return ("logit", MODEL_OUTPUT)
    return None


class BatchScorer:
    """``scorer(acts) -> (B,)``: element i scored with ``objectives[i]``.

    ``views``: rows per element in the model layers' activations (crop views), element i's
    views at rows i*views .. i*views+views-1.
    """

    def __init__(self, objectives: Sequence[Objective], views: int = 1):
        self.objectives = list(objectives)
        self.batch, self.views = len(self.objectives), views
        leaves: dict[int, _Leaf] = {}
        for i, objective in enumerate(self.objectives):
            for weight, term in objective.terms():
                leaf = leaves.setdefault(id(term), _Leaf(term))
                leaf.elements.append(i)
                leaf.weights.append(weight)
        self.groups: dict[tuple, list[_Leaf]] = {}
        self.others: list[_Leaf] = []
        for leaf in leaves.values():
            key = _group_key(leaf.term)
            if key is None:
                self.others.append(leaf)
            else:
                self.groups.setdefault(key, []).append(leaf)
        self._index_cache: dict[tuple, tuple[torch.Tensor, ...]] = {}
        self._checked: set[tuple] = set()

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.evaluate(acts).total

    def evaluate(self, acts: Mapping[str, torch.Tensor]) -> Scores:
        device = next(iter(acts.values())).device if acts else torch.device("cpu")
        total = torch.zeros(self.batch, device=device)
        target = torch.zeros(self.batch, device=device)
        depends = torch.zeros(self.batch, dtype=torch.bool)
        for key, members in self.groups.items():
            elements, weights, values = self._gathered(key, members, acts, device)
            self._add(total, target, depends, elements, weights, values, penalty=False,
                      listed=[e for leaf in members for e in leaf.elements])
        for leaf in self.others:
            elements, weights = self._indices(
                ("leaf", id(leaf), device),
                lambda leaf=leaf: (torch.tensor(leaf.elements, device=device),
                                   torch.tensor(leaf.weights, device=device)))
            values = self._leaf_values(leaf, acts).to(device)
            self._add(total, target, depends, elements, weights, values, leaf.term.penalty,
                      listed=leaf.elements)
        return Scores(total, target, depends)

    @staticmethod
    def _add(total, target, depends, elements, weights, values, penalty: bool,
             listed: list[int]) -> None:
        contribution = weights * values.to(weights.dtype)
        total.index_add_(0, elements, contribution)
        if not penalty:
            target.index_add_(0, elements, contribution)
            if values.requires_grad:
                depends[listed] = True  # from the host's list: no copy back from the device

    def _indices(self, key: tuple, make) -> tuple[torch.Tensor, ...]:
        """Index tensors made once per scorer and device: a step copies nothing to the device
        (on a GPU each copy would wait for it; a CUDA graph allows none)."""
        if key not in self._index_cache:
            self._index_cache[key] = make()
        return self._index_cache[key]

    def _rows(self, elements: Sequence[int], device: torch.device) -> torch.Tensor:
        """The activation rows of ``elements``: every view of each, in element order."""
        def make() -> tuple[torch.Tensor]:
            base = torch.tensor(elements, device=device)[:, None] * self.views
            return ((base + torch.arange(self.views, device=device)).reshape(-1),)
        return self._indices(("rows", tuple(elements), device), make)[0]

    def _gathered(self, key: tuple, members: list[_Leaf], acts, device):
        """One gather for a group of channel (or logit) leaves: (elements, weights, values)."""
        cache_key = (key, device)
        if cache_key not in self._index_cache:
            elements = [e for leaf in members for e in leaf.elements]
            features = [leaf.term.k for leaf in members for _ in leaf.elements]
            weights = [w for leaf in members for w in leaf.weights]
            rows = self._rows(elements, device)
            per_row = torch.tensor(features, device=device).repeat_interleave(self.views)
            self._index_cache[cache_key] = (torch.tensor(elements, device=device),
                                            torch.tensor(weights, device=device), rows, per_row)
        elements, weights, rows, per_row = self._index_cache[cache_key]
        if key[0] == "logit":
            act = acts[MODEL_OUTPUT]
            act = act.reshape(act.shape[0], -1)
            layer = MODEL_OUTPUT
        else:
            _, layer, pool, _, border = key
            act = members[0].term.feature_map(acts[layer])  # (rows, C, *S)
        if (key, act.shape[1]) not in self._checked:
            for leaf in members:
                check_feature(layer, act, leaf.term.k)
            self._checked.add((key, act.shape[1]))
        fmap = act[rows, per_row]
        if key[0] == "logit":
            values = fmap
        else:
            if border:
                fmap = fmap[(slice(None),) + (slice(border, -border),) * (fmap.dim() - 1)]
            values = pool_map(fmap, pool)
        return elements, weights, values.reshape(-1, self.views).mean(1)

    def _leaf_values(self, leaf: _Leaf, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(len(elements),) the leaf's value for each element that uses it."""
        term, count = leaf.term, len(leaf.elements)
        whole = leaf.elements == list(range(self.batch))
        sub = Activations(views=self.views, batch=count)
        for layer in term.layers:
            value = acts[layer]
            if layer == IMAGE:
                sub[layer] = value if whole else value[leaf.elements]
            elif not whole:
                rows = self._rows(leaf.elements, value.device)
                sub[layer] = value.index_select(term.batch_axis(layer), rows)
            else:
                sub[layer] = value
        values = term.score(sub)
        expected = count * (self.views if term.per_view else 1)
        if values.numel() == 1 and expected != 1:  # a term that returned one shared scalar
            values = values.reshape(1).expand(expected)
        if term.per_view:
            values = values.reshape(count, self.views).mean(1)
        return values.reshape(count)


def batch_scores(objectives: Sequence[Objective], acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Score element i of a batch with ``objectives[i]``: a (B,) tensor (see ``BatchScorer``)."""
    return BatchScorer(objectives)(acts)
