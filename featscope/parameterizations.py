"""Parameterizations: the variables searched over, and the function that turns them into an input.

Each constructor returns a ``Parameterization``: ``params`` (the leaf tensors to optimize)
and ``__call__() -> (B, C, H, W)`` image in [0, 1] (or, for ``tensor``, the raw model input).
Searching in a different space than pixels changes which direction a gradient step takes:
the Fourier basis with 1/f scaling and decorrelated colour gives low frequencies and natural
colour statistics the larger steps, which is what makes the result legible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

# Square root of the colour covariance of natural images (rows: R, G, B), as used by Lucid.
COLOR_CORRELATION_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]]
)
COLOR_CORRELATION = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()


@dataclass
class Parameterization:
    params: list[torch.Tensor]
    fn: Callable[[], torch.Tensor]
    kind: str
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # fixed tensors (not searched)

    def __call__(self) -> torch.Tensor:
        return self.fn()


def _randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU so that a seed gives the same start on every device.
    return torch.randn(shape, generator=generator).to(device)


def decorrelate_colors(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in decorrelated colour space -> (B, 3, H, W) in RGB space."""
    matrix = COLOR_CORRELATION.to(image.device, image.dtype)
    return torch.einsum("bchw,rc->brhw", image, matrix)


def _to_rgb(image: torch.Tensor, decorrelate: bool) -> torch.Tensor:
    if decorrelate and image.shape[1] == 3:
        image = decorrelate_colors(image)
    return torch.sigmoid(image)


def pixel(shape: tuple[int, int, int, int], *, generator: torch.Generator,
          device: torch.device, sd: float = 0.01, decorrelate: bool = True) -> Parameterization:
    """One free variable per pixel and channel, squashed into [0, 1] by a sigmoid."""
    values = _randn(shape, generator, device).mul_(sd).requires_grad_(True)
    return Parameterization([values], lambda: _to_rgb(values, decorrelate), "pixel")


def fourier_frequencies(height: int, width: int) -> torch.Tensor:
    """|f| of each coefficient of ``rfft2`` for an (H, W) image: shape (H, W // 2 + 1)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def fourier(shape: tuple[int, int, int, int], *, generator: torch.Generator,
            device: torch.device, sd: float = 0.01, decay_power: float = 1.0,
            decorrelate: bool = True) -> Parameterization:
    """Image = sigmoid(colour(irfft2(scale * spectrum) / 4)), scale = 1 / max(|f|, 1/max(H, W))^decay.

    The spectrum (B, C, H, W//2+1) is complex, stored as real and imaginary parts.
    """
    batch, channels, height, width = shape
    freqs = fourier_frequencies(height, width)
    scale = (1.0 / freqs.clamp_min(1.0 / max(height, width)) ** decay_power).to(device)
    spectrum = _randn((batch, channels, *freqs.shape, 2), generator, device).mul_(sd)
    spectrum.requires_grad_(True)

    def image() -> torch.Tensor:
        coefficients = torch.view_as_complex(spectrum) * scale
        spatial = torch.fft.irfft2(coefficients, s=(height, width), norm="ortho") / 4.0
        return _to_rgb(spatial, decorrelate)

    return Parameterization([spectrum], image, "fourier")


def maco(shape: tuple[int, int, int, int], *, generator: torch.Generator, device: torch.device,
         sd: float = 0.01, decorrelate: bool = True,
         spectrum: torch.Tensor | None = None) -> Parameterization:
    """MACO: a fixed natural magnitude spectrum; only the phase φ (B, C, H, W//2+1) is searched.

    Image = sigmoid(colour(standardize(irfft2(magnitude · e^{iφ})))). Because the magnitude
    cannot grow, the search cannot add high-frequency energy, only arrange it; the result keeps
    natural-image statistics. ``spectrum`` is a centred log-magnitude (3, S, S) (default: the
    shipped one, see ``featscope.spectrum``). Phases start uniform in [-π, π): a narrower start
    aligns every frequency at the origin and draws a bright spot there (``sd`` is not used). Every batch element has its own phase, so many units or
    classes render in one batch.
    """
    from .spectrum import natural_spectrum, rfft_magnitude  # spectrum imports this module

    batch, channels, height, width = shape
    log_spectrum = natural_spectrum() if spectrum is None else spectrum
    magnitude = rfft_magnitude(log_spectrum, height, width, channels).to(device)
    phase = (torch.rand((batch, channels, height, width // 2 + 1), generator=generator) * 2 - 1)
    phase = phase.mul_(torch.pi).to(device).requires_grad_(True)

    def image() -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.polar(magnitude.expand_as(phase), phase),
                                   s=(height, width), norm="ortho")
        flat = spatial.reshape(batch, -1)
        spatial = (spatial - flat.mean(1).reshape(-1, 1, 1, 1)) / (
            flat.std(1).reshape(-1, 1, 1, 1) + 1e-6)
        return _to_rgb(spatial, decorrelate)

    return Parameterization([phase], image, "maco", buffers={"magnitude": magnitude})


def from_image(start: torch.Tensor, *, generator: torch.Generator, device: torch.device,
               sd: float = 0.01, decorrelate: bool = True) -> Parameterization:
    """Pixels that start at ``start`` (B, C, H, W) in [0, 1] (accentuation), plus N(0, sd²).

    The variables are the pre-sigmoid, decorrelated values, so the search moves in the same
    space as ``pixel`` does. The small noise breaks the tie between copies of one start
    image, which a diversity term could otherwise never separate (its gradient is zero
    between identical images).
    """
    logits = torch.logit(start.float().clamp(1e-3, 1 - 1e-3))
    if decorrelate and start.shape[1] == 3:
        logits = torch.einsum("bchw,rc->brhw", logits, torch.linalg.inv(COLOR_CORRELATION))
    logits = logits + sd * torch.randn(logits.shape, generator=generator)
    values = logits.to(device).requires_grad_(True)
    return Parameterization([values], lambda: _to_rgb(values, decorrelate), "from-image")


def tensor(shape: tuple[int, ...], *, generator: torch.Generator, device: torch.device,
           sd: float = 0.01, max_norm: float | None = None) -> Parameterization:
    """A raw input of any shape (B, ...), optionally kept inside an L2 ball per sample.

    The ball is a reparameterization x = v * min(1, r / |v|), so the search never leaves it
    and, at the boundary, the gradient moves only the direction of x.
    """
    values = _randn(shape, generator, device).mul_(sd).requires_grad_(True)

    def value() -> torch.Tensor:
        if max_norm is None:
            return values
        norms = values.reshape(shape[0], -1).norm(dim=1).clamp_min(1e-12)
        factor = (max_norm / norms).clamp(max=1.0)
        return values * factor.reshape((-1,) + (1,) * (len(shape) - 1))

    return Parameterization([values], value, "tensor")


# Image parameterizations by name: constructor(shape, *, generator, device, sd, decorrelate).
IMAGE_PARAMETERIZATIONS: dict[str, Callable[..., Parameterization]] = {
    "fourier": fourier,
    "pixel": pixel,
    "maco": maco,
}


def uniform_pixels(shape: tuple[int, ...], *, generator: torch.Generator, device: torch.device,
                   low: float, high: float) -> Parameterization:
    """Unconstrained values in the model's input space, started uniform in [low, high]."""
    start = torch.rand(shape, generator=generator).mul_(high - low).add_(low)
    values = start.to(device).requires_grad_(True)
    return Parameterization([values], lambda: values, "model-space pixels")
