"""Contact sheets: labelled grids of images.

A *sheet* is a grid of cells, each an image with a one-line label strip under it (the unit
index and its activation, or a class name and probability). An *overview* stacks several
rows of cells, one per layer, with the layer's name at the left, so that low and high layers
can be compared in one picture.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import FeatscopeError
from ..files.writing import to_pil

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)


def as_pictures(images: torch.Tensor | Sequence[torch.Tensor | Image.Image]) -> list[Image.Image]:
    """(B, C, H, W) in [0, 1], or a list of (C, H, W) tensors or PIL images -> RGB PIL images."""
    if isinstance(images, torch.Tensor) and images.dim() != 4:
        raise FeatscopeError(f"sheets show images (B, C, H, W); got shape {tuple(images.shape)}")
    return [(to_pil(image) if isinstance(image, torch.Tensor) else image).convert("RGB")
            for image in images]


def label_height(cell: int) -> int:
    """Height of the label strip under a cell of side ``cell``: readable but not dominant."""
    return max(11, round(cell * 0.11))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # ships with Pillow: no system fonts needed


def fit_text(text: str, font: ImageFont.ImageFont, width: float) -> str:
    """``text``, shortened with an ellipsis so that it fits in ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _paste_cell(canvas: Image.Image, picture: Image.Image, label: str, left: int, top: int,
                cell: int) -> None:
    canvas.paste(picture.resize((cell, cell), Image.Resampling.LANCZOS), (left, top))
    strip = label_height(cell)
    font = _font(strip - 2)
    ImageDraw.Draw(canvas).text((left + 1, top + cell + 1), fit_text(label, font, cell - 2),
                                fill=INK, font=font)


def grid(images: torch.Tensor | Sequence[Image.Image], labels: Sequence[str] | None = None,
         columns: int = 8, margin: int = 2, cell: int | None = None) -> Image.Image:
    """A grid of the images, ``columns`` wide, each with its label strip under it.

    The result is ``c * cell + (c + 1) * margin`` wide and ``r * (cell + label) + (r + 1) *
    margin`` high, with c = min(columns, n) and r = ceil(n / c). ``cell`` defaults to the
    first image's side.
    """
    pictures = as_pictures(images)
    if not pictures:
        raise FeatscopeError("nothing to draw: the sheet has no images")
    labels = list(labels) if labels is not None else [""] * len(pictures)
    if len(labels) != len(pictures):
        raise ValueError(f"{len(labels)} labels for {len(pictures)} images")
    side = cell or pictures[0].width
    cols = max(1, min(columns, len(pictures)))
    rows = math.ceil(len(pictures) / cols)
    pitch = side + label_height(side) + margin
    canvas = Image.new("RGB", (cols * (side + margin) + margin, rows * pitch + margin), BACKGROUND)
    for i, (picture, label) in enumerate(zip(pictures, labels)):
        row, col = divmod(i, cols)
        _paste_cell(canvas, picture, label, margin + col * (side + margin), margin + row * pitch,
                    side)
    return canvas


def overview(rows: Sequence[tuple[str, Sequence[Image.Image], Sequence[str]]], cell: int = 112,
             margin: int = 2, title_width: int | None = None) -> Image.Image:
    """One row of labelled cells per (name, pictures, labels), the name at the row's left."""
    if not rows:
        raise FeatscopeError("nothing to draw: the overview has no layers")
    font = _font(max(11, cell // 8))
    width = title_width or int(max(font.getlength(name) for name, _, _ in rows)) + 2 * margin + 4
    cols = max(len(pictures) for _, pictures, _ in rows)
    pitch = cell + label_height(cell) + margin
    canvas = Image.new("RGB", (width + cols * (cell + margin) + margin, len(rows) * pitch + margin),
                       BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, (name, pictures, labels) in enumerate(rows):
        top = margin + r * pitch
        draw.text((margin, top + cell // 2), fit_text(name, font, width - 2 * margin), fill=INK,
                  font=font, anchor="lm")
        for c, (picture, label) in enumerate(zip(as_pictures(pictures), labels)):
            _paste_cell(canvas, picture, label, width + c * (cell + margin), top, cell)
    return canvas


def png_bytes(picture: Image.Image) -> bytes:
    """The PNG encoding of ``picture`` (what Jupyter's ``_repr_png_`` returns)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
