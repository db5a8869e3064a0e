"""Plug-In Inversion's ensemble: several augmented copies of each image per step.

Each image (B, C, H, W) becomes ``count`` copies, each rolled (a circular shift, as PII's
jitter) by its own offset, colour-shifted per channel in the model's input space as PII's
ColorShift does (n -> (n - μ) / σ with μ ~ U(-s, s) and log σ ~ U(-s, s)), plus a Gaussian
colour offset per channel whose sd decays linearly to 0 over the search; then resized to the
model's input. The objective is averaged over the copies: a pattern must survive every
shift and colour cast to score, which keeps a model without batch norm from drifting into
adversarial colours (Ghiasi et al. 2022). With ``original``, the first copy is the image
itself: a model that is not robust to the shifts (a ViT with random weights) still sees the
image it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import FeatscopeError
from ..randomness import UnitRandom
from .affine import resize_to
from .steps import StepTransform


@dataclass(frozen=True)
class Ensemble:
    """``count`` copies per image; ``shift``: the largest roll, a fraction of the image side;
    ``color``: the ColorShift range s; ``noise``: the colour offset's sd at the first step
    (in the model's input units, like ``color``); ``original``: copy 0 is not augmented."""

    count: int
    shift: float = 0.0
    color: float = 0.0
    noise: float = 0.0
    original: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise FeatscopeError(f"an ensemble needs at least 1 copy (got {self.count})")
        if not 0 <= self.shift < 1:
            raise FeatscopeError(f"the ensemble's shift is a fraction of the side in [0, 1); "
                                 f"got {self.shift}")

    def transform(self, mean: torch.Tensor, std: torch.Tensor, out_size: tuple[int, int],
                  channels: int) -> StepTransform:
        """The ensemble as a ``StepTransform`` of (B, ``channels``, H, W) images in [0, 1]:
        (B * count, C, *out_size), copy j of image b at b * count + j. ``mean``, ``std`` (C,):
        the model's input normalization, in whose units the colours shift (kept on the
        device the images are on). Every draw comes from the image's own unit; a CUDA graph
        can hold it."""
        count = self.count
        colours = bool(self.color or self.noise)
        layout: list = []
        if self.shift:
            layout.append(("rand", (count, 2)))  # the roll (dy, dx)
        if colours:  # ColorShift's μ and log σ, then the colour offset
            layout += [("rand", (count, channels)), ("rand", (count, channels)),
                       ("randn", (count, channels))]
        shape = (1, -1, 1, 1)
        mean, std = mean.reshape(shape), std.reshape(shape)

        def parameters(draws: list[torch.Tensor], progress: torch.Tensor,
                       size: tuple[int, int]) -> dict[str, torch.Tensor]:
            params, rest = {}, list(draws)
            if self.shift:
                limit = (self.shift * torch.tensor(size)).round()
                params["offsets"] = ((rest.pop(0) * 2 - 1) * limit).round().long()  # (n, count, 2)
            if colours:
                mu, log_sigma, offset = rest  # (n, count, C) each
                # the offset's sd decays linearly to 0 over the search
                sd = (self.noise * (1 - progress).clamp_min(0)).float().reshape(-1, 1, 1)
                params["scale"] = torch.exp(-self.color * (log_sigma * 2 - 1))
                params["shift"] = offset * sd - self.color * (mu * 2 - 1) * params["scale"]
            return params

        def apply(image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
            batch = image.shape[0]
            n = batch * count
            copies = image.repeat_interleave(count, dim=0)
            if "offsets" in params:
                copies = roll(copies, params["offsets"].reshape(n, 2))
            if "scale" in params:
                scale, shift = (params[k].reshape(n, -1, 1, 1).to(image.dtype)
                                for k in ("scale", "shift"))
                m, s = mean.to(image.dtype), std.to(image.dtype)
                # In input units n = (x - mean) / std: n' = n / σ - μ / σ + offset.
                copies = m + s * (((copies - m) / s) * scale + shift)
            if self.original:  # every draw is made first, so the augmented copies stay the same
                copies = copies.reshape(batch, count, *copies.shape[1:])
                copies = torch.cat([image[:, None], copies[:, 1:]], dim=1)
                copies = copies.reshape(n, *image.shape[1:])
            return resize_to(copies, out_size, antialias=False)

        return StepTransform(tuple(layout), parameters, apply)

    def views(self, image: torch.Tensor, progress: float, random: UnitRandom | torch.Generator,
              mean: torch.Tensor, std: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B * count, C, *out_size): one step's copies at
        ``progress`` of the search, drawn now (``transform``)."""
        mean, std = (t.to(image.device) for t in (mean, std))
        return self.transform(mean, std, out_size, image.shape[1])(image, random, progress)


def roll(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Each image (N, C, H, W) rolled circularly by its own (dy, dx) in ``offsets`` (N, 2)."""
    count, _, height, width = images.shape
    offsets = offsets.to(images.device)
    rows = (torch.arange(height, device=images.device)[None] - offsets[:, :1]) % height
    cols = (torch.arange(width, device=images.device)[None] - offsets[:, 1:]) % width
    index = rows[:, :, None] * width + cols[:, None, :]  # (N, H, W) source pixel of each pixel
    flat = images.reshape(count, images.shape[1], height * width)
    gathered = flat.gather(2, index.reshape(count, 1, -1).expand(-1, images.shape[1], -1))
    return gathered.reshape(images.shape)
