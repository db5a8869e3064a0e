"""Colour: the decorrelated colour space that image parameterizations search in (Lucid's).

A search step in decorrelated colour moves the three colour channels along the principal
axes of natural images' colour covariance, so that steps change luminance and colour in
natural proportions.
"""

from __future__ import annotations

import torch

# Square root of the colour covariance of natural images (rows: R, G, B), as used by Lucid.
COLOR_CORRELATION_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]]
)
COLOR_CORRELATION = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()


def decorrelate_colors(image: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, H, W) in decorrelated colour space -> (B, 3, H, W) in RGB space. ``matrix``:
    ``COLOR_CORRELATION`` already on the image's device and dtype (a search passes it, made
    once: a copy to a GPU at every step would wait for the GPU)."""
    if matrix is None:
        matrix = COLOR_CORRELATION.to(image.device, image.dtype)
    return torch.einsum("bchw,rc->brhw", image, matrix)


def to_rgb(image: torch.Tensor, decorrelate: bool,
           matrix: torch.Tensor | None = None) -> torch.Tensor:
    """Pre-sigmoid values (B, C, H, W) -> an image in [0, 1] (colours recorrelated for C = 3;
    ``matrix`` as in ``decorrelate_colors``)."""
    if decorrelate and image.shape[1] == 3:
        image = decorrelate_colors(image, matrix)
    return torch.sigmoid(image)


def to_presigmoid(image: torch.Tensor, decorrelate: bool) -> torch.Tensor:
    """The inverse of ``to_rgb``: an image (B, C, H, W) in [0, 1] -> pre-sigmoid values."""
    logits = torch.logit(image.float().clamp(1e-3, 1 - 1e-3))
    if decorrelate and image.shape[1] == 3:
        logits = torch.einsum("bchw,rc->brhw", logits, torch.linalg.inv(COLOR_CORRELATION))
    return logits
