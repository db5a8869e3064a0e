"""Figures that put a unit's visualization beside the natural images that excite it most."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ..analysis.examples import Examples, crop
from ..drawing.grid import grid


def examples_figure(targets: Sequence[str], visuals: Sequence[Image.Image],
                    values: Sequence[float | None], examples: Examples, labels: Sequence[str],
                    size: tuple[int, int], cell: int = 112) -> Image.Image:
    """A row per unit: its visualization (labelled with its activation and the ratio to the
    best natural image), then its top-k dataset crops."""
    cells, texts = [], []
    k = max(len(examples.by_target.get(t, [])) for t in targets)
    for target, visual, value, label in zip(targets, visuals, values, labels):
        cells.append(visual.resize((cell, cell)))
        ratio = examples.ratio(target, value) if value is not None else None
        texts.append(f"{label} {value:.3g}" + (f" {ratio:.2g}x" if ratio else "")
                     if value is not None else label)
        found = examples.by_target.get(target, [])
        for e in found:
            cells.append(crop(e, size).resize((cell, cell)))
            texts.append(f"{Path(e.path).stem} {e.activation:.3g}")
        blank = Image.new("RGB", (cell, cell), (255, 255, 255))
        cells += [blank] * (k - len(found))
        texts += [""] * (k - len(found))
    return grid(cells, texts, columns=k + 1, cell=cell)
