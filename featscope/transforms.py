"""Transformation robustness: random geometric changes applied to the image at each step.

A transform is a plain function ``(image (B, C, H, W), generator) -> image``; ``compose``
chains them. Random parameters are drawn from a CPU ``torch.Generator`` (no device sync, the
same draws on every device), once per step for the whole batch, as Lucid does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(options: Sequence, generator: torch.Generator):
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def compose(*transforms: Transform) -> Transform:
    def composed(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in transforms:
            image = transform(image, generator)
        return image
    return composed


def pad(width: int, value: float = 0.5) -> Transform:
    """Pad every side by ``width`` px with a constant (Lucid pads with mid-grey)."""
    def padded(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.pad(image, (width,) * 4, mode="constant", value=value)
    return padded


def jitter(d: int) -> Transform:
    """Crop ``d`` px less than the image, at a random offset in [0, d) on each axis."""
    if d < 1:
        raise ValueError("jitter needs d >= 1 px")

    def jittered(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dy = int(torch.randint(d, (1,), generator=generator))
        dx = int(torch.randint(d, (1,), generator=generator))
        height, width = image.shape[-2:]
        return image[..., dy:dy + height - d, dx:dx + width - d]
    return jittered


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear)."""
    def scaled(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        factor = _choice(scales, generator)
        if factor == 1:
            return image
        size = [max(1, round(s * factor)) for s in image.shape[-2:]]
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    return scaled


def random_rotate(degrees: Sequence[float], padding: str = "zeros") -> Transform:
    """Rotate about the centre by an angle drawn from ``degrees``; the size is kept.

    ``padding`` fills the corners: "zeros" (as kornia, hence Lucent) or "reflection".
    """
    def rotated(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angle = math.radians(_choice(degrees, generator))
        if angle == 0:
            return image
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=image.dtype,
                             device=image.device).expand(image.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding,
                             align_corners=False)
    return rotated


def resize(size: tuple[int, int]) -> Transform:
    """Resize to a fixed (H, W), e.g. the model's input size; a no-op when already there."""
    def resized(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    return resized


def lucid_transforms(side: int = 224) -> Transform:
    """Lucid's standard set: pad 12, jitter 8, scale 0.90-1.10, rotate -10..10 deg, jitter 4.

    The pixel amounts are Lucid's for a 224 px image; for another ``side`` they are scaled in
    proportion (at least 1 px), so that a 32 px image is not drowned by 12 px of padding.
    """
    def px(amount: int) -> int:
        return max(1, round(amount * side / 224))

    return compose(
        pad(px(12), 0.5),
        jitter(px(8)),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(list(range(-10, 11)) + [0] * 5),
        jitter(px(4)),
    )


def random_affine(side: int, out_size: tuple[int, int], fill: float = 0.5, *,
                  pad_px: int | None = None, shifts: tuple[int, int] | None = None,
                  scales: Sequence[float] | None = None,
                  degrees: Sequence[float] | None = None) -> Transform:
    """Lucid's set, scaled to ``side`` px, and the resize to ``out_size``, as ONE resampling.

    Padding, jitter, scaling, rotation, jitter and resize are each an affine map of pixel
    coordinates, so their composite is one affine map, applied by a single ``grid_sample``.
    That costs one bilinear pass instead of five (forward and backward), and blurs less.
    Parameters are drawn as in ``lucid_transforms`` (the keyword arguments override them);
    pixels from outside the image get ``fill`` (Lucid's mid-grey padding), also in the
    corners that rotation exposes.
    """
    def px(amount: int) -> int:
        return max(1, round(amount * side / 224))

    pad_px = px(12) if pad_px is None else pad_px
    shift1, shift2 = shifts or (px(8), px(4))
    scales = scales or [1 + (i - 5) / 50 for i in range(11)]
    degrees = degrees or list(range(-10, 11)) + [0] * 5

    def transformed(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # Drawn in the order of lucid_transforms, offsets as (y, x), so a seed means the same.
        offset1 = torch.randint(shift1, (2,), generator=generator).double().flip(0)
        scale = _choice(scales, generator)
        angle = math.radians(_choice(degrees, generator))
        offset2 = torch.randint(shift2, (2,), generator=generator).double().flip(0)
        source = torch.tensor(image.shape[-2:][::-1], dtype=torch.float64)  # (W, H)
        target = torch.tensor(out_size[::-1], dtype=torch.float64)
        scaled = (source + 2 * pad_px - shift1) * scale  # side lengths after the scaling
        cropped = scaled - shift2
        cos, sin = math.cos(angle), math.sin(angle)
        unrotate = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
        # Pixel coordinates (x, y) of the source point behind output point q: u = M q + t.
        matrix = unrotate @ torch.diag(cropped / target) / scale
        centre = scaled / 2
        shift = (unrotate @ offset2 + centre - unrotate @ centre) / scale + offset1 - pad_px
        # The same map in grid_sample's normalized coordinates (align_corners=False).
        to_norm = torch.diag(2 / source)
        theta_a = to_norm @ matrix @ torch.diag(target / 2)
        theta_b = to_norm @ (matrix @ (target / 2) + shift) - 1
        theta = torch.cat([theta_a, theta_b[:, None]], dim=1).to(image.device, image.dtype)
        grid = F.affine_grid(theta.expand(image.shape[0], 2, 3),
                             [image.shape[0], image.shape[1], *out_size], align_corners=False)
        return F.grid_sample(image - fill, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False) + fill
    return transformed


def identity(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return image
