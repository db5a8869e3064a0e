"""Token sequences: T token embeddings (T, D) searched in an embedding layer's continuous
space, reported as the nearest real tokens and the objective those hard tokens reach."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine.device import module_device
from ..engine.probing import Probe, frozen
from ..errors import FeatscopeError
from ..files.writing import save_npy, write_text
from ..objectives.base import Objective
from ..objectives.scoring import batch_scores
from ..params.base import Parameterization
from ..randomness import UnitRandom, per_element


@dataclass
class Tokens:
    """Each position is kept inside the ball of the longest row of the embedding table, so
    that the search stays near the region real tokens occupy. The result is reported as the
    nearest real token at each position (cosine similarity), with the objective of those
    hard tokens next to the soft one: the gap says how much of the optimum real text reaches.
    """

    table: torch.Tensor  # (V, D) embedding matrix
    vocab: list[str] | None = None
    name: str = "tokens"

    def parameterize(self, shape: tuple[int, ...], random: UnitRandom | torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        radius = float(self.table.detach().norm(dim=1).max())
        # Start at random real-token scale, not at zero (where every position is alike).
        draws = per_element(random, shape[0], *shape[1:], normal=True)
        values = draws.mul_(radius / math.sqrt(shape[-1])).to(device).requires_grad_(True)

        def value() -> torch.Tensor:
            norms = values.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return values * (radius / norms).clamp(max=1.0)

        return Parameterization([values], value, "token embeddings")

    def nearest(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T, D) soft embeddings -> (B, T) ids of the nearest tokens by cosine similarity."""
        table = torch.nn.functional.normalize(self.table.detach().cpu().float(), dim=1)
        soft = torch.nn.functional.normalize(embeddings.detach().cpu().float(), dim=-1)
        return (soft @ table.T).argmax(dim=-1)

    def token(self, index: int) -> str:
        return self.vocab[index] if self.vocab and index < len(self.vocab) else str(index)

    def save(self, x: torch.Tensor, folder: Path, stem: str, **extras) -> dict[str, str]:
        """x: (T, D) soft embeddings -> .npy and a JSON of the nearest tokens."""
        ids = self.nearest(x[None])[0].tolist()
        report = {"token_ids": ids, "tokens": [self.token(i) for i in ids]}
        npy = save_npy(x, folder / f"{stem}.npy")
        path = write_text(json.dumps(report, indent=2) + "\n", folder / f"{stem}.tokens.json")
        return {"npy": str(npy), "tokens": str(path)}

    def measure(self, module: torch.nn.Module, objectives: Sequence[Objective],
                x: torch.Tensor) -> list[dict[str, float]]:
        """Per element of x (B, T, D): the objective of its nearest real tokens."""
        hard = hard_token_scores(module, objectives, self.nearest(x))
        return [{"objective_hard_tokens": float(v)} for v in hard]


def hard_token_scores(module: torch.nn.Module, objectives: Sequence[Objective],
                      ids: torch.Tensor) -> torch.Tensor:
    """The objectives (B,) on real token ids (B, T), for the soft-vs-hard gap."""
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    with frozen(module), Probe(module, layers) as probe, torch.no_grad():
        return batch_scores(list(objectives), probe.run(ids.to(module_device(module)))).cpu()


def read_vocab(path: str | Path) -> list[str]:
    """One token per line, in id order."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise FeatscopeError(f"cannot read vocabulary {str(path)!r}: {error}; expected a text "
                             "file with one token per line, in id order") from None
