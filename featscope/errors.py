"""User-facing errors: each says what was wrong and what would be valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FeatscopeError(Exception):
    """An error caused by the user's input (model, layer, target, file), not by a bug."""


def nearest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates closest to ``name``, best first (for "did you mean" hints)."""
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not close:
        close = [c for c in candidates if name and (name in c or c in name)][:n]
    return close


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = nearest(name, candidates)
    return f" Nearest: {', '.join(repr(c) for c in close)}." if close else ""
