"""Image parameterizations: pixels, Fourier coefficients, MACO's phases, model-space pixels,
and a start image.

Each returns a ``Parameterization`` whose ``__call__()`` is an image (B, C, H, W) in [0, 1].
The Fourier basis with 1/f scaling and decorrelated colour gives low frequencies and
natural colour statistics the larger steps, which is what makes the result legible.
"""

from __future__ import annotations

import torch

from ..randomness import UnitRandom, per_element
from .base import Parameterization, register_parameterization
from .color import COLOR_CORRELATION, to_presigmoid, to_rgb
from .spectrum import natural_spectrum, rfft_magnitude

Random = UnitRandom | torch.Generator


def _colors(device: torch.device) -> torch.Tensor:
    # Made once per parameterization: a copy to a GPU at every step would wait for the GPU.
    return COLOR_CORRELATION.to(device)


def _normal(shape: tuple[int, ...], random: Random, device: torch.device,
            sd: float) -> torch.Tensor:
    # Drawn on the CPU so that a seed gives the same start on every device.
    return per_element(random, shape[0], *shape[1:], normal=True).mul_(sd).to(device)


@register_parameterization("pixel")
def pixel(shape: tuple[int, int, int, int], *, random: Random | None = None,
          device: torch.device, sd: float = 0.01, decorrelate: bool = True,
          generator: torch.Generator | None = None, **context) -> Parameterization:
    """One free variable per pixel and channel, squashed into [0, 1] by a sigmoid."""
    values = _normal(shape, random or generator, device, sd).requires_grad_(True)
    colors = _colors(device)
    return Parameterization([values], lambda: to_rgb(values, decorrelate, colors), "pixel")


def fourier_frequencies(height: int, width: int) -> torch.Tensor:
    """|f| of each coefficient of ``rfft2`` for an (H, W) image: shape (H, W // 2 + 1)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


@register_parameterization("fourier")
def fourier(shape: tuple[int, int, int, int], *, random: Random | None = None,
            device: torch.device, sd: float = 0.01, decay_power: float = 1.0,
            decorrelate: bool = True, generator: torch.Generator | None = None,
            **context) -> Parameterization:
    """Image = sigmoid(colour(irfft2(scale * spectrum) / 4)),
    scale = 1 / max(|f|, 1/max(H, W))^decay.

    The spectrum (B, C, H, W//2+1) is complex, stored as real and imaginary parts.
    """
    batch, channels, height, width = shape
    freqs = fourier_frequencies(height, width)
    scale = (1.0 / freqs.clamp_min(1.0 / max(height, width)) ** decay_power).to(device)
    spectrum = _normal((batch, channels, *freqs.shape, 2), random or generator, device, sd)
    spectrum.requires_grad_(True)
    colors = _colors(device)

    def image() -> torch.Tensor:
        coefficients = torch.view_as_complex(spectrum) * scale
        spatial = torch.fft.irfft2(coefficients, s=(height, width), norm="ortho") / 4.0
        return to_rgb(spatial, decorrelate, colors)

    return Parameterization([spectrum], image, "fourier")


@register_parameterization("maco")
def maco(shape: tuple[int, int, int, int], *, random: Random | None = None,
         device: torch.device, decorrelate: bool = True, spectrum: torch.Tensor | None = None,
         generator: torch.Generator | None = None, **context) -> Parameterization:
    """MACO: a fixed natural magnitude spectrum; only the phase φ (B, C, H, W//2+1) is searched.

    Image = sigmoid(colour(standardize(irfft2(magnitude · e^{iφ})))). Because the magnitude
    cannot grow, the search cannot add high-frequency energy, only arrange it; the result
    keeps natural-image statistics. ``spectrum`` is a centred log-magnitude (3, S, S)
    (default: the shipped one, see ``spectrum``). Phases start uniform in [-π, π): a
    narrower start aligns every frequency at the origin and draws a bright spot there. Every
    batch element has its own phase, so many units or classes render in one batch.
    """
    batch, channels, height, width = shape
    log_spectrum = natural_spectrum() if spectrum is None else spectrum
    magnitude = rfft_magnitude(log_spectrum, height, width, channels).to(device)
    phase = per_element(random or generator, batch, channels, height, width // 2 + 1) * 2 - 1
    phase = phase.mul_(torch.pi).to(device).requires_grad_(True)
    colors = _colors(device)

    def image() -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.polar(magnitude.expand_as(phase), phase),
                                   s=(height, width), norm="ortho")
        flat = spatial.reshape(batch, -1)
        spatial = (spatial - flat.mean(1).reshape(-1, 1, 1, 1)) / (
            flat.std(1).reshape(-1, 1, 1, 1) + 1e-6)
        return to_rgb(spatial, decorrelate, colors)

    return Parameterization([phase], image, "maco", buffers={"magnitude": magnitude})


@register_parameterization("keras")
def model_space(shape: tuple[int, int, int, int], *, random: Random | None = None,
                device: torch.device, normalization=None, low: float = -0.125,
                high: float = 0.125, generator: torch.Generator | None = None,
                **context) -> Parameterization:
    """Unconstrained values in the model's input space, started uniform in [low, high] (the
    Keras example's search space); the image is their un-normalized view."""
    start = per_element(random or generator, shape[0], *shape[1:]).mul_(high - low).add_(low)
    values = start.to(device).requires_grad_(True)
    if normalization is None:
        return Parameterization([values], lambda: values, "model-space pixels")
    return Parameterization([values], lambda: normalization.inverse(values), "model-space pixels")


def bounded_pixels(start: torch.Tensor, *, device: torch.device) -> Parameterization:
    """The pixels of ``start`` (B, C, H, W) in [0, 1] themselves: no sigmoid, no colour
    decorrelation, kept in [0, 1] by ``project`` (clipped) after each update.

    The faithful finish searches these. Through a sigmoid, a pixel that reached black or
    white sits deep on its flat end and takes many steps to come back; here every pixel
    moves at the step's rate until the last step, so the finish can still re-arrange what
    the search settled on. The colours stay in RGB: the clip is per value, as Adam's steps
    are; clipped in RGB after steps in the decorrelated space, colours stuck at the bounds
    (a known filter's finish lowered its activation). docs/quality.md has the measurements.
    """
    values = start.to(device=device, dtype=torch.float32).clone().requires_grad_(True)

    @torch.no_grad()
    def project() -> None:
        values.clamp_(0, 1)

    return Parameterization([values], lambda: values, "bounded pixels", project=project)


def from_image(start: torch.Tensor, *, random: Random | None = None, device: torch.device,
               sd: float = 0.01, decorrelate: bool = True,
               generator: torch.Generator | None = None) -> Parameterization:
    """Pixels that start at ``start`` (B, C, H, W) in [0, 1] (accentuation), plus N(0, sd²).

    The variables are the pre-sigmoid, decorrelated values, so the search moves in the same
    space as ``pixel`` does. The small noise breaks the tie between copies of one start
    image, which a diversity term could otherwise never separate (its gradient is zero
    between identical images).
    """
    logits = to_presigmoid(start, decorrelate)
    noise = per_element(random or generator, logits.shape[0], *logits.shape[1:], normal=True)
    values = (logits + sd * noise).to(device).requires_grad_(True)
    colors = _colors(device)
    return Parameterization([values], lambda: to_rgb(values, decorrelate, colors), "from-image")
