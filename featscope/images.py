"""Reading image files as tensors: a user's start image, a folder of natural images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .errors import FeatscopeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_image(path: str | Path, convert: str = "RGB") -> torch.Tensor:
    """An image file -> (C, H, W) float in [0, 1]; ``convert`` is a PIL mode ("RGB" or "L")."""
    path = Path(path)
    if not path.is_file():
        raise FeatscopeError(f"image file {str(path)!r} does not exist")
    try:
        with Image.open(path) as picture:
            array = np.array(picture.convert(convert))
    except (UnidentifiedImageError, OSError) as error:
        raise FeatscopeError(f"cannot read image {str(path)!r} ({error.__class__.__name__}); "
                             f"valid: {', '.join(IMAGE_SUFFIXES)}") from None
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255)


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FeatscopeError(f"image folder {str(folder)!r} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FeatscopeError(f"image folder {str(folder)!r} holds no images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_folder(folder: str | Path, convert: str = "RGB") -> list[torch.Tensor]:
    """Every image in ``folder`` (not recursive), sorted by name, each (C, H, W) in [0, 1]."""
    return [load_image(p, convert) for p in image_files(folder)]


def fit(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) -> (C, *size): centre-crop to the target's aspect ratio, then area-resize."""
    height, width = image.shape[-2:]
    aspect = size[1] / size[0]
    crop_h, crop_w = (height, round(height * aspect)) if width / height > aspect \
        else (round(width / aspect), width)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    cropped = image[None, :, top:top + crop_h, left:left + crop_w]
    mode = "area" if crop_h >= size[0] else "bilinear"
    return F.interpolate(cropped, size=size, mode=mode)[0].clamp(0, 1)
