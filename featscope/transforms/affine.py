"""Transformation robustness: random geometric changes applied to the image at each step.

A transform is a plain function ``(image (B, C, H, W), random) -> image``; ``compose``
chains them. ``random`` is a ``UnitRandom`` (each image draws its own parameters from its
unit's generator, so its transforms do not depend on the other images of its batch) or a
plain ``torch.Generator`` (one draw for the whole batch, as Lucid does). Draws are made on
the CPU: no device sync, the same numbers on every device.

``random_affine`` applies Lucid's whole set and the resize to the model's input as one
affine resampling with one matrix per image, so per-image transforms cost nothing extra; it
is a ``StepTransform`` (``steps``), whose matrices a search can draw ahead for every step.
The chained transforms (``lucid_transforms``) reproduce Lucid's separate steps; their sizes
depend on the draws, so with per-image draws they run image by image (``per_image``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..randomness import UnitRandom, per_batch
from .steps import StepTransform

Random = UnitRandom | torch.Generator
Transform = Callable[[torch.Tensor, Random], torch.Tensor]

def scales_within(jitter: float) -> list[float]:
    """Eleven evenly spaced scales from 1 - ``jitter`` to 1 + ``jitter`` (one for 0)."""
    return [1 + (i - 5) / (5 / jitter) for i in range(11)] if jitter else [1.0]


LUCID_SCALES = scales_within(0.1)  # 0.90 .. 1.10
LUCID_DEGREES = list(range(-10, 11)) + [0] * 5  # -10 .. 10, zero more often


def _pick(options: Sequence[float], u: torch.Tensor) -> torch.Tensor:
    """Uniform draws u in [0, 1) -> options, (n,) float64."""
    index = (u * len(options)).long().clamp_max(len(options) - 1)
    return torch.tensor(options, dtype=torch.float64)[index]


def _one_draw(random: Random, image: torch.Tensor, k: int) -> torch.Tensor:
    """(k,) parameters shared by every image of the batch (a chained transform's sizes
    depend on them)."""
    draws = per_batch(random, image.shape[0], k)
    if draws.shape[0] != 1 and not torch.equal(draws, draws[:1].expand_as(draws)):
        raise ValueError("chained transforms draw one set of parameters per batch; wrap them "
                         "in per_image(...) for per-image draws")
    return draws[0]


def compose(*transforms: Transform) -> Transform:
    def composed(image: torch.Tensor, random: Random) -> torch.Tensor:
        for transform in transforms:
            image = transform(image, random)
        return image
    return composed


def identity(image: torch.Tensor, random: Random) -> torch.Tensor:
    return image


def pad(width: int, value: float = 0.5) -> Transform:
    """Pad every side by ``width`` px with a constant (Lucid pads with mid-grey)."""
    def padded(image: torch.Tensor, random: Random) -> torch.Tensor:
        return F.pad(image, (width,) * 4, mode="constant", value=value)
    return padded


def jitter(d: int) -> Transform:
    """Crop ``d`` px less than the image, at a random offset in [0, d) on each axis."""
    if d < 1:
        raise ValueError("jitter needs d >= 1 px")

    def jittered(image: torch.Tensor, random: Random) -> torch.Tensor:
        dy, dx = (int(v) for v in (_one_draw(random, image, 2) * d).long().clamp_max(d - 1))
        height, width = image.shape[-2:]
        return image[..., dy:dy + height - d, dx:dx + width - d]
    return jittered


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear)."""
    def scaled(image: torch.Tensor, random: Random) -> torch.Tensor:
        factor = float(_pick(scales, _one_draw(random, image, 1)))
        if factor == 1:
            return image
        size = [max(1, round(s * factor)) for s in image.shape[-2:]]
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    return scaled


def random_rotate(degrees: Sequence[float], padding: str = "zeros") -> Transform:
    """Rotate about the centre by an angle drawn from ``degrees``; the size is kept.

    ``padding`` fills the corners: "zeros" (as kornia, hence Lucent) or "reflection".
    """
    def rotated(image: torch.Tensor, random: Random) -> torch.Tensor:
        angle = math.radians(float(_pick(degrees, _one_draw(random, image, 1))))
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
    def resized(image: torch.Tensor, random: Random | None = None) -> torch.Tensor:
        return resize_to(image, size, antialias=False)
    return resized


def resize_to(images: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size), bilinear (antialiased when shrinking); no-op at that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=tuple(size), mode="bilinear", antialias=antialias,
                         align_corners=False)


def _px(amount: int, side: int) -> int:
    """Lucid's pixel ``amount`` for a 224 px image, in proportion for ``side`` (at least 1)."""
    return max(1, round(amount * side / 224))


def lucid_transforms(side: int = 224) -> Transform:
    """Lucid's standard set: pad 12, jitter 8, scale 0.90-1.10, rotate -10..10 deg, jitter 4.

    The pixel amounts are Lucid's for a 224 px image; for another ``side`` they are scaled in
    proportion (at least 1 px), so that a 32 px image is not drowned by 12 px of padding.
    One set of parameters per batch: see ``per_image`` for per-image draws.
    """
    return compose(
        pad(_px(12, side), 0.5),
        jitter(_px(8, side)),
        random_scale(LUCID_SCALES),
        random_rotate(LUCID_DEGREES),
        jitter(_px(4, side)),
    )


def per_image(transform: Transform, out_size: tuple[int, int]) -> Transform:
    """``transform`` applied to each image with its own unit's draws, resized to ``out_size``."""
    def each(image: torch.Tensor, random: Random) -> torch.Tensor:
        if isinstance(random, torch.Generator) or len(random) == 1:
            return resize_to(transform(image, random), out_size, antialias=False)
        return torch.cat([resize_to(transform(image[i:i + 1], random.row(i)), out_size,
                                    antialias=False) for i in range(image.shape[0])])
    return each


def random_affine(side: int, out_size: tuple[int, int], fill: float = 0.5, *,
                  pad_px: int | None = None, shifts: tuple[int, int] | None = None,
                  scales: Sequence[float] | None = None,
                  degrees: Sequence[float] | None = None) -> StepTransform:
    """Lucid's set, scaled to ``side`` px, seen through a window of ``out_size``, as ONE
    resampling.

    The image is first resized to ``out_size``; then, as Lucid does, padded, jittered, scaled
    by a factor from ``scales`` (Lucid's 0.9-1.1), rotated and jittered; the window is the
    ``out_size`` region around the centre of the result, so the model sees the content at the
    drawn scale, as Lucid's model does.
    (Resizing the whole padded, cropped canvas to ``out_size`` instead, as an earlier version
    did, undoes the scale draws and shrinks every view by the padding's share, about 5 %:
    units then came out that much too coarse, e.g. gratings of a lower frequency than their
    unit's, which the search's clean finish cannot move.)

    Padding, jitter, scaling, rotation, jitter and window are each an affine map of pixel
    coordinates, so their composite is one affine map, applied by a single ``grid_sample``
    with one matrix per image. That costs one bilinear pass instead of five (forward and
    backward), and blurs less. Parameters are drawn as in ``lucid_transforms`` (the keyword
    arguments override them); pixels from outside the image get ``fill`` (Lucid's mid-grey
    padding), also in the corners that rotation exposes. A ``StepTransform``: its matrices
    (float64, from the draws) can be made ahead for every step of a search.
    """
    pad_px = _px(12, side) if pad_px is None else pad_px
    shift1, shift2 = shifts or (_px(8, side), _px(4, side))
    scales = scales or LUCID_SCALES
    degrees = degrees or LUCID_DEGREES
    # Drawn in the order of lucid_transforms, offsets as (y, x), so a seed means the same.
    layout = (("rand", (2,)), ("rand", (1,)), ("rand", (1,)), ("rand", (2,)))

    def parameters(draws: list[torch.Tensor], progress: torch.Tensor,
                   size: tuple[int, int]) -> dict[str, torch.Tensor]:
        first, scale_draw, angle_draw, second = draws
        offset1 = (first * shift1).floor().clamp_max(shift1 - 1)
        scale = _pick(scales, scale_draw[:, 0])
        angle = _pick(degrees, angle_draw[:, 0]) * (math.pi / 180)
        offset2 = (second * shift2).floor().clamp_max(shift2 - 1)
        return {"theta": _affine_theta(size, out_size, pad_px, shift1, shift2,
                                       offset1.double().flip(1), scale, angle,
                                       offset2.double().flip(1))}

    def apply(image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = image.shape[0]
        theta = params["theta"].to(image.dtype).expand(batch, 2, 3)
        grid = F.affine_grid(theta, [batch, image.shape[1], *out_size], align_corners=False)
        return F.grid_sample(image - fill, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False) + fill
    return StepTransform(layout, parameters, apply, shared=True)


def _affine_theta(in_size: Sequence[int], out_size: Sequence[int], pad_px: int, shift1: int,
                  shift2: int, offset1: torch.Tensor, scale: torch.Tensor, angle: torch.Tensor,
                  offset2: torch.Tensor) -> torch.Tensor:
    """(n, 2, 3) ``affine_grid`` matrices of pad, jitter, scale, rotate, jitter and the
    window (see ``random_affine``).

    offsets (n, 2) as (x, y) px, scale and angle (n,) (radians), all float64.
    """
    source = torch.tensor(list(in_size)[::-1], dtype=torch.float64)  # (W, H)
    target = torch.tensor(list(out_size)[::-1], dtype=torch.float64)
    scaled = (source + 2 * pad_px - shift1) * scale[:, None]  # (n, 2) sides after scaling
    cos, sin = torch.cos(angle), torch.sin(angle)
    unrotate = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    rotate = lambda v: torch.einsum("nij,nj->ni", unrotate, v)  # noqa: E731
    # Source pixel coordinates (x, y) of the centre of the second jitter's crop, which is the
    # window's centre: the scaled canvas's centre, moved by that jitter through the rotation.
    centre = scaled / 2
    middle = (rotate(offset2 + (scaled - shift2) / 2 - centre) + centre) / scale[:, None] \
        + offset1 - pad_px
    # Behind output point q (pixels, from the window's centre) lies source point
    # u = M q + middle: the resize to out_size, the scale and the rotation.
    matrix = unrotate * (source / target)[None, None, :] / scale[:, None, None]
    # The same map in grid_sample's normalized coordinates (align_corners=False).
    theta_a = (2 / source)[None, :, None] * matrix * (target / 2)[None, None, :]
    theta_b = (2 / source)[None, :] * middle - 1
    return torch.cat([theta_a, theta_b[:, :, None]], dim=2)


def small_transforms(side: int) -> Transform:
    """Shift up to 4 %, scale 0.9-1.1, rotate ±10°, keeping the size (reflection borders):
    what a robust visualization should survive (``metrics.robustness``)."""
    shift = max(1, round(0.04 * side))
    return compose(pad(shift, 0.5), jitter(2 * shift), random_scale([0.9, 0.95, 1.0, 1.05, 1.1]),
                   random_rotate(list(range(-10, 11)), padding="reflection"),
                   resize((side, side)))
