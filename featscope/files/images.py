"""Reading image files: one list of image suffixes, one folder scanner, one way to fit a
picture to a model's input.

- ``find_images``: the image files under a folder (recursively), in a stable order;
- ``load_image``: a file -> (C, H, W) float in [0, 1];
- ``prepare`` / ``load_prepared``: a picture resized to cover (H, W) and centre-cropped;
- ``fit``: the same for a tensor (C, H, W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import FeatscopeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


def find_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix; recursively unless told not to), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise FeatscopeError(f"image folder {str(root)!r} does not exist or is not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    paths = sorted(p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FeatscopeError(f"image folder {str(root)!r} holds no images: no images under it "
                             f"end in {', '.join(IMAGE_SUFFIXES)}")
    return paths


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


def load_folder(folder: str | Path, convert: str = "RGB") -> list[torch.Tensor]:
    """Every image directly in ``folder`` (not recursive), sorted by name, each (C, H, W)."""
    return [load_image(p, convert) for p in find_images(folder, recursive=False)]


def mode_for(channels: int) -> str:
    """The PIL mode that gives ``channels`` colour channels (1: "L", 3: "RGB")."""
    return "L" if channels == 1 else "RGB"


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


def prepare(picture: Image.Image, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Resize so that the picture covers ``size`` (H, W), then centre-crop to it."""
    height, width = size
    scale = max(height / picture.height, width / picture.width)
    resized = picture.convert(mode).resize(
        (max(width, round(picture.width * scale)), max(height, round(picture.height * scale))),
        Image.Resampling.BICUBIC)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_prepared(path: Path, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    with Image.open(path) as picture:
        return prepare(picture, size, mode)


def to_tensor(picture: Image.Image) -> torch.Tensor:
    """An L or RGB PIL image -> (C, H, W) in [0, 1]."""
    array = np.asarray(picture)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
