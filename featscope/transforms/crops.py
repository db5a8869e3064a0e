"""Many random views of one canvas per step (MACO's crops), batched over images and views.

Each image of the batch (B, C, H, W) yields ``count`` square crops at random places and
sizes, each resampled straight to the model's input size with one ``grid_sample`` (crop and
resize in one op, different boxes for every view), plus Gaussian noise. The objective is then
averaged over the views: a pattern must work at several scales and places to score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FeatscopeError
from ..randomness import UnitRandom
from .steps import StepTransform

MAX_SIDE = 1.5  # crop side / canvas side: above 1 a view shows the canvas smaller, on grey
FILL = 0.5  # what a view shows outside the canvas (Lucid's padding grey)


@dataclass(frozen=True)
class CropSchedule:
    """Crop side as a fraction of the canvas side, uniform in [low, high] at each step.

    ``start`` and ``end`` are the (low, high) ranges at the first and the last step; between
    them the range moves linearly (MACO shrinks its boxes over the search). Sides above 1 (at
    most ``MAX_SIDE``) zoom out: the whole canvas on a mid-grey border, as Lucid pads.
    ``spread`` is the standard deviation of the crop centres around the canvas centre, in
    canvas sides (None: uniform over every position that keeps the view's canvas part
    inside). ``rotate``: degrees, ±.
    """

    count: int
    start: tuple[float, float] = (0.5, 1.0)
    end: tuple[float, float] = (0.5, 1.0)
    spread: float | None = None
    rotate: float = 0.0
    noise: float = 0.0
    thumbnails: tuple[float, float] | None = None  # each view seen at this side fraction

    def __post_init__(self):
        if self.count < 1:
            raise FeatscopeError(f"crops must be at least 1 (got {self.count})")
        for low, high in (self.start, self.end):
            if not 0 < low <= high <= MAX_SIDE:
                raise FeatscopeError(f"crop sizes must satisfy 0 < low <= high <= {MAX_SIDE} "
                                     f"(canvas fractions); got ({low}, {high})")

    def sizes(self, progress: float | torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Side fractions for a step at ``progress`` in [0, 1] of the search, from uniform
        ``draws`` of any shape; ``progress`` may also be (n,) float64, one per row of
        ``draws`` (n, ...)."""
        low = self.start[0] + (self.end[0] - self.start[0]) * progress
        high = self.start[1] + (self.end[1] - self.start[1]) * progress
        if isinstance(progress, torch.Tensor):  # float32 arithmetic, as with Python numbers
            shape = (-1,) + (1,) * (draws.dim() - 1)
            low, high = low.float().reshape(shape), (high - low).float().reshape(shape)
            return low + high * draws
        return low + (high - low) * draws


def crop_transform(schedule: CropSchedule, out_size: tuple[int, int],
                   channels: int) -> StepTransform:
    """``schedule``'s views of (B, ``channels``, H, W) canvases as a ``StepTransform``:
    (B * count, C, *out_size) views, view j of image b at b*count+j. Without thumbnails a
    CUDA graph can hold it."""
    count = schedule.count
    height, width = out_size
    layout: list = [("rand", (count,)),
                    ("rand" if schedule.spread is None else "randn", (count, 2)),
                    ("rand", (count,))]
    if schedule.thumbnails is not None:
        layout.append(("rand", (count,)))
    if schedule.noise:
        layout.append(("randn", (count, channels, height, width)))

    def parameters(draws: list[torch.Tensor], progress: torch.Tensor,
                   size: tuple[int, int]) -> dict[str, torch.Tensor]:
        side = schedule.sizes(progress, draws[0])  # (n, count)
        # In grid units ([-1, 1] spans the canvas) the centre may move ±room: a crop stays
        # inside the canvas, a zoomed-out view keeps the whole canvas in sight.
        room = (1 - side).abs()
        if schedule.spread is None:
            centre = (draws[1] * 2 - 1) * room[..., None]
        else:
            centre = (draws[1] * 2 * schedule.spread).clamp(-1, 1) * room[..., None]
        angle = (draws[2] * 2 - 1) * math.radians(schedule.rotate)
        cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
        theta = torch.stack([torch.stack([cos, -sin, centre[..., 0]], -1),
                             torch.stack([sin, cos, centre[..., 1]], -1)], -2)
        params = {"theta": theta}  # (n, count, 2, 3)
        rest = draws[3:]
        if schedule.thumbnails is not None:
            low, high = schedule.thumbnails
            params["fractions"] = low + (high - low) * rest.pop(0)
        if schedule.noise:
            params["noise"] = rest.pop(0)
        return params

    def apply(image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = image.shape[0]
        n = batch * count
        theta = params["theta"].reshape(n, 2, 3).to(image.dtype)
        grid = F.affine_grid(theta, [n, channels, height, width], align_corners=False)
        # Stack each image's views along the height, so the canvas is read without a copy.
        grid = grid.reshape(batch, count * height, width, 2)
        views = F.grid_sample(image - FILL, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False) + FILL
        views = views.reshape(batch, channels, count, height, width).transpose(1, 2)
        views = views.reshape(n, channels, height, width)
        if "fractions" in params:
            views = torch.cat([_seen_small(view[None], fraction) for view, fraction in
                               zip(views, params["fractions"].reshape(n).tolist())])
        if "noise" in params:
            noise = params["noise"].reshape(views.shape).to(views.dtype)
            views = views + schedule.noise * noise
        return views

    return StepTransform(tuple(layout), parameters, apply,
                         capturable=schedule.thumbnails is None)


def crop_views(image: torch.Tensor, schedule: CropSchedule, out_size: tuple[int, int],
               progress: float, random: UnitRandom | torch.Generator) -> torch.Tensor:
    """(B, C, H, W) canvas -> (B * count, C, *out_size) views, view j of image b at b*count+j.

    Each image's views are drawn from its own unit's randomness (``UnitRandom``), or all from
    one generator.
    """
    return crop_transform(schedule, out_size, image.shape[1])(image, random, progress)


def _seen_small(view: torch.Tensor, fraction: float) -> torch.Tensor:
    """(1, C, H, W) -> the same size, as seen at ``fraction`` of its side (area-shrunk, then
    enlarged bilinearly): only what survives a thumbnail is left."""
    height, width = view.shape[-2:]
    side = (max(1, round(height * fraction)), max(1, round(width * fraction)))
    if side == (height, width):
        return view
    small = F.interpolate(view, size=side, mode="area")
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
