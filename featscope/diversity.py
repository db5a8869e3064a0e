"""Diversity: several different images for one objective, by penalizing their similarity.

Batch elements that render the same objective form a group. Each element's feature
representation is its layer activation's Gram matrix (which channels fire together,
independent of where), as in style comparisons; the penalty is the mean cosine similarity to
the other members of its group. Subtracting it from the objective pushes the members apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# The similarity is in [-1, 1] while objectives are O(1..30): this weight lets it matter
# without drowning the objective.
DEFAULT_WEIGHT = 5.0


def gram(acts: torch.Tensor) -> torch.Tensor:
    """(B, C, *S) activations -> (B, C*C) flattened Gram matrices; (B, C) -> (B, C)."""
    if acts.dim() == 2:
        return acts
    flat = acts.reshape(acts.shape[0], acts.shape[1], -1)
    return torch.bmm(flat, flat.transpose(1, 2)).reshape(acts.shape[0], -1) / flat.shape[-1]


def groups_of(names: Sequence[str]) -> torch.Tensor:
    """(B,) group ids: elements with the same objective name share one."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(name, len(ids)) for name in names])


def similarity(acts: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """(B,) mean cosine similarity of each element's Gram matrix to its group's other members.

    Elements alone in their group get 0 (no penalty).
    """
    features = F.normalize(gram(acts), dim=1)
    cosine = features @ features.T
    same = groups.to(acts.device)[:, None] == groups.to(acts.device)[None, :]
    same.fill_diagonal_(False)
    others = same.sum(1).clamp_min(1)
    return (cosine * same).sum(1) / others
