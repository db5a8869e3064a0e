"""What a render returns: one ``UnitResult`` per unit, and ``RenderResult`` over a request."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import asdict, dataclass, field

import torch

from ..drawing.grid import grid, png_bytes
from ..errors import FeatscopeError
from ..files.writing import to_pil
from ..transforms.affine import resize_to
from .recipes import Recipe


@dataclass
class UnitResult:
    """The search for one unit: its image, its objective before, during and after."""

    label: str  # unique in its request
    target: str  # the objective's name
    copy: int
    seed: int  # the unit's own seed (derived from the user's seed, target and copy)
    preset: str
    recipe: Recipe
    image: torch.Tensor | None  # (C, H, W) in [0, 1] for images; the raw input otherwise
    initial: float  # objective on the starting input, without random transforms
    final: float  # objective on the result, without random transforms
    history: torch.Tensor  # (steps,) objective during the search (with random transforms)
    zero_gradient: bool  # the input gradient was zero at every step
    never_activated: bool  # the objective never rose above its start
    seconds: float
    batch: list[str] = field(default_factory=list)  # labels of the units searched with it
    transparency: torch.Tensor | None = None  # (H, W) accumulated |input gradient|
    nan_retries: list[float] | None = None  # learning rates tried after NaN/Inf
    error: str | None = None  # why the unit failed (no image then)
    extra: dict = field(default_factory=dict)  # numbers an input kind measured (tokens)
    # The objective under the random transforms at the end of their phase (the mean of its
    # last tenth), beside ``final`` on the image itself: what robustness costs, or gains.
    transformed: float = math.nan
    # What was measured of the image where it was rendered (``analysis.report``; the atlas's
    # workers: robustness), as summary rows carry it.
    metrics: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, label: str, target: str, copy: int, seed: int, preset: str, recipe: Recipe,
               error: str, nan_retries: list[float] | None = None) -> UnitResult:
        return cls(label, target, copy, seed, preset, recipe, None, math.nan, math.nan,
                   torch.empty(0), False, False, 0.0, nan_retries=nan_retries, error=error)


@dataclass
class RenderResult:
    """Every unit of a request, in the request's order."""

    units: list[UnitResult]
    device: str
    input_shape: tuple[int, ...]  # the model's input (no batch): mixed image sizes meet there

    @property
    def targets(self) -> list[str]:
        return [u.target for u in self.units]

    @property
    def labels(self) -> list[str]:
        return [u.label for u in self.units]

    @property
    def failed(self) -> list[UnitResult]:
        return [u for u in self.units if u.error is not None]

    @property
    def images(self) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] for images (units of different sizes, e.g. classes searched at
        a reduced resolution beside full-size units, are resized to the model's input); the
        raw inputs (B, ...) otherwise. A failed unit's row is NaN."""
        shapes = {tuple(u.image.shape) for u in self.units if u.image is not None}
        if not shapes:
            return torch.full((len(self.units), *self.input_shape), math.nan)
        shape = shapes.pop() if len(shapes) == 1 else tuple(self.input_shape)
        rows = []
        for unit in self.units:
            if unit.image is None:
                rows.append(torch.full(shape, math.nan))
            elif tuple(unit.image.shape) != shape:
                rows.append(resize_to(unit.image[None], shape[1:])[0])
            else:
                rows.append(unit.image)
        return torch.stack(rows)

    @property
    def initial(self) -> torch.Tensor:
        return torch.tensor([u.initial for u in self.units])

    @property
    def final(self) -> torch.Tensor:
        return torch.tensor([u.final for u in self.units])

    @property
    def history(self) -> torch.Tensor:
        """(steps, B); units that ran fewer steps are padded with NaN at the end."""
        steps = max((len(u.history) for u in self.units), default=0)
        out = torch.full((steps, len(self.units)), math.nan)
        for i, unit in enumerate(self.units):
            out[:len(unit.history), i] = unit.history
        return out

    @property
    def zero_gradient(self) -> list[bool]:
        return [u.zero_gradient for u in self.units]

    @property
    def never_activated(self) -> list[bool]:
        return [u.never_activated for u in self.units]

    @property
    def transparency(self) -> torch.Tensor | None:
        maps = [u.transparency for u in self.units]
        return torch.stack(maps) if maps and all(m is not None for m in maps) else None

    @property
    def seconds(self) -> float:
        return sum(u.seconds for u in self.units)

    @property
    def recipe(self) -> Recipe:
        return self.units[0].recipe

    @property
    def settings(self) -> dict:
        """The first unit's recipe, the seeds, and the learning rates of NaN retries."""
        settings = {**asdict(self.recipe), "seeds": {u.label: u.seed for u in self.units}}
        retried = {u.label: u.nan_retries for u in self.units if u.nan_retries}
        if retried:
            settings["nan_retries"] = retried
        return settings

    def _cells(self) -> tuple[list[torch.Tensor], list[str]] | None:
        images = [u.image for u in self.units if u.image is not None]
        if not images or any(i.dim() != 3 or i.shape[0] not in (1, 3) for i in images):
            return None
        side = max(max(i.shape[-2:]) for i in images)
        scale = max(1, 96 // side)  # small inputs (28 px) are shown enlarged, pixels kept sharp
        cells = [torch.nn.functional.interpolate(i[None], scale_factor=scale, mode="nearest")[0]
                 if scale > 1 else i for i in images]
        labels = [f"{u.label} {u.final:.3g}" for u in self.units if u.image is not None]
        return cells, labels

    def _repr_png_(self) -> bytes | None:
        """Jupyter shows a result inline: its images as a grid labelled with the targets."""
        cells = self._cells()
        return None if cells is None else png_bytes(grid(*cells))

    def _repr_html_(self) -> str | None:
        """Jupyter: each image with its label, objective from start to end, and its curve."""
        cells = self._cells()
        if cells is None:
            return None
        images, _ = cells
        shown = [u for u in self.units if u.image is not None]
        figures = []
        for unit, image in zip(shown, images):
            data = base64.b64encode(png_bytes(to_pil(image)))
            figures.append(
                f'<figure style="display:inline-block;margin:4px;text-align:center;'
                f'font:12px sans-serif"><img src="data:image/png;base64,{data.decode()}" '
                f'style="image-rendering:pixelated;width:{max(128, image.shape[-1])}px">'
                f"<figcaption>{html.escape(unit.label)}<br>{unit.initial:.3g} → "
                f"{unit.final:.3g}<br>{_sparkline(unit.history)}</figcaption></figure>")
        return "<div>" + "".join(figures) + "</div>"


def _sparkline(history: torch.Tensor, width: int = 120, height: int = 24) -> str:
    values = [v for v in history.tolist() if math.isfinite(v)]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    points = " ".join(f"{i * (width - 1) / (len(values) - 1):.1f},"
                      f"{height - 1 - (v - low) / span * (height - 2):.1f}"
                      for i, v in enumerate(values))
    return (f'<svg width="{width}" height="{height}"><polyline fill="none" stroke="#1f6feb" '
            f'points="{points}"/></svg>')


class RenderError(FeatscopeError):
    """Some units failed; ``result`` holds every unit, the failed ones with their ``error``."""

    def __init__(self, result: RenderResult):
        self.result = result
        failed = result.failed
        super().__init__(f"{len(failed)} of {len(result.units)} unit(s) failed: "
                         + "; ".join(f"{u.label}: {u.error}" for u in failed[:3])
                         + (" ..." if len(failed) > 3 else ""))
