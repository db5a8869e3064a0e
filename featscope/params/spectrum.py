"""The magnitude spectrum of natural images, which MACO keeps fixed while it searches phases.

The spectrum is of images in the decorrelated colour space the image parameterizations use
(z = C^-1 logit(x), C the colour correlation), so that recorrelating and squashing a random-
phase image with this magnitude gives natural colour statistics. It is stored once, as the
log-magnitude of the full centred 2-D FFT at ``STORED_SIDE`` px, and resampled to any size.
``featscope/data/natural_spectrum.npy`` was made by ``tools/make_spectrum.py`` from the
colour sample photographs of scikit-image; ``--spectrum-from DIR`` computes one from a folder.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FeatscopeError
from ..files.images import load_folder
from .color import COLOR_CORRELATION

STORED_SIDE = 128
_EPS = 1e-3


def _decorrelated(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (3, H, W) in the parameterization's pre-sigmoid colour space."""
    logits = torch.logit(image.clamp(_EPS, 1 - _EPS))
    return torch.einsum("rc,chw->rhw", torch.linalg.inv(COLOR_CORRELATION), logits)


def _square_views(image: torch.Tensor, side: int) -> list[torch.Tensor]:
    """The centre square and the four corner squares (half the short side), each at ``side``."""
    h, w = image.shape[-2:]
    s = min(h, w)
    half = s // 2
    boxes = [((h - s) // 2, (w - s) // 2, s), (0, 0, half), (0, w - half, half),
             (h - half, 0, half), (h - half, w - half, half)]
    return [F.interpolate(image[None, :, y:y + n, x:x + n], size=(side, side), mode="area")[0]
            for y, x, n in boxes]


def _hann(side: int) -> torch.Tensor:
    # A photo is not periodic: without a window its borders add a bright cross (energy along
    # the axes) to the spectrum, which a phase-only search then turns into edge lines.
    window = torch.hann_window(side, periodic=False)
    return window[:, None] * window[None, :]


def spectrum_from_images(images: Iterable[torch.Tensor], side: int = STORED_SIDE) -> torch.Tensor:
    """Mean log-magnitude of the centred FFT of (3, H, W) images in [0, 1]: (3, side, side).

    Each image contributes five square views (centre and corners) so that a few photos give a
    smooth estimate. The DC term (the mean, which standardization removes anyway) is replaced
    by its neighbours' mean, so that resampling does not leak it into low frequencies.
    """
    logs = []
    for image in images:
        if image.dim() != 3 or image.shape[0] != 3:
            raise FeatscopeError(f"spectra need RGB images (3, H, W); got shape "
                                 f"{tuple(image.shape)}")
        for view in _square_views(image.float(), side):
            z = _decorrelated(view)
            z = (z - z.mean(dim=(1, 2), keepdim=True)) * _hann(side)
            magnitude = torch.fft.fftshift(torch.fft.fft2(z, norm="ortho"), dim=(-2, -1)).abs()
            logs.append(magnitude.clamp_min(1e-8).log())
    if not logs:
        raise FeatscopeError("no images to compute a spectrum from")
    mean = torch.stack(logs).mean(0)
    c = side // 2
    neighbours = torch.stack([mean[:, c - 1, c], mean[:, c + 1, c], mean[:, c, c - 1],
                              mean[:, c, c + 1]])
    mean[:, c, c] = neighbours.mean(0)
    return mean


def spectrum_from_folder(folder: str | Path, side: int = STORED_SIDE) -> torch.Tensor:
    """The log-magnitude spectrum (3, side, side) of the images in ``folder``."""
    return spectrum_from_images(load_folder(folder, convert="RGB"), side)


@functools.cache
def _stored() -> np.ndarray:
    with resources.as_file(resources.files("featscope") / "data" / "natural_spectrum.npy") as path:
        return np.load(path)


def natural_spectrum() -> torch.Tensor:
    """The shipped log-magnitude spectrum, (3, STORED_SIDE, STORED_SIDE)."""
    return torch.from_numpy(_stored().astype(np.float32))


def rfft_magnitude(log_spectrum: torch.Tensor, height: int, width: int,
                   channels: int = 3) -> torch.Tensor:
    """Resample a centred log-magnitude spectrum (3, S, S) to ``rfft2``'s grid for (H, W).

    Returns the magnitude (channels, H, W // 2 + 1). Each target coefficient reads the stored
    spectrum at the same frequency in cycles per pixel (bilinear in log-magnitude). A
    one-channel (grayscale) image uses the first decorrelated channel, the luminance.
    """
    if channels not in (1, 3):
        raise FeatscopeError(f"MACO needs 1 or 3 image channels; got {channels}")
    side = log_spectrum.shape[-1]
    fy = torch.fft.fftfreq(height)[:, None].expand(height, width // 2 + 1)
    fx = torch.fft.rfftfreq(width)[None, :].expand(height, width // 2 + 1)
    # Stored index i holds frequency (i - side/2)/side; grid_sample wants [-1, 1] coordinates.
    to_coord = lambda f: (f * side + side / 2) / (side - 1) * 2 - 1  # noqa: E731
    grid = torch.stack([to_coord(fx), to_coord(fy)], dim=-1)[None]
    sampled = F.grid_sample(log_spectrum[None].float(), grid, mode="bilinear",
                            padding_mode="border", align_corners=True)[0]
    return sampled[:channels].exp()
