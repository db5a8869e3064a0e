"""Contact sheets: which units to show, and labelled grids of their images.

A *sheet* is a grid of cells, each an image with a one-line label strip under it (the unit
index and its activation, or a class name and probability). An *overview* stacks several
rows of cells, one per layer, with the layer's name at the left, so that low and high layers
can be compared in one picture.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import FeatscopeError
from .outputs import to_pil
from .probing import LayerInfo

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")
_NUMBERED = re.compile(r"^(.+\.)?\d+$")  # the N-th module of a sequence: "_blocks.3", "3"


def parse_units(spec: str | None, count: int, every: bool = False, default: int = 64) -> list[int]:
    """Unit indices from ``"0:64"`` (a half-open range), ``"3,17,40"`` or ``every`` unit.

    ``count`` is the number of features of the layer; ``None`` means the first ``default``.
    """
    if every:
        return list(range(count))
    if spec is None:
        return list(range(min(default, count)))
    ranged = _RANGE.match(spec)
    if ranged:
        start = int(ranged.group(1) or 0)
        stop = min(int(ranged.group(2)) if ranged.group(2) else count, count)
        units = list(range(start, stop))
    else:
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise FeatscopeError(f"bad --units {spec!r}: give a range like 0:64 or a list like "
                                 "3,17,40 (whole numbers)")
        units = list(dict.fromkeys(int(p) for p in parts))
    if not units:
        raise FeatscopeError(f"--units {spec!r} selects no unit; this layer has {count} "
                             f"features, valid 0..{count - 1}")
    outside = [u for u in units if u >= count]
    if outside:
        raise FeatscopeError(f"unit {outside[0]} is out of range: this layer has {count} "
                             f"features, valid 0..{count - 1}")
    return units


def as_pictures(images: torch.Tensor | Sequence[Image.Image]) -> list[Image.Image]:
    """(B, C, H, W) in [0, 1] or a list of PIL images -> a list of RGB PIL images."""
    if isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise FeatscopeError(f"sheets show images (B, C, H, W); got shape {tuple(images.shape)}")
        return [to_pil(image).convert("RGB") for image in images]
    return [image.convert("RGB") for image in images]


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


def spread_layers(infos: Sequence[LayerInfo], count: int) -> list[str]:
    """``count`` layers spread evenly from the first to the last block of the network.

    Candidates are layers with a 2-D feature map (C, H, W). Where the network is a sequence
    of blocks (numbered modules with submodules, e.g. ``_blocks.3`` or ``layer2.1``), the
    blocks are the candidates, because their outputs are what the next stage sees; otherwise
    every such layer is.
    """
    spatial = [info for info in infos if info.name and len(info.shape) == 3]
    containers = _containers(infos)
    blocks = [info for info in spatial
              if info.name in containers and _NUMBERED.match(info.name)]
    candidates = blocks if len(blocks) >= count else spatial
    if not candidates:
        raise FeatscopeError("this model has no layer with a 2-D feature map (C, H, W); "
                             "give --layers explicitly")
    if count >= len(candidates):
        return [info.name for info in candidates]
    step = (len(candidates) - 1) / max(1, count - 1)
    return [candidates[round(i * step)].name for i in range(count)]


def _containers(infos: Sequence[LayerInfo]) -> set[str]:
    names = [info.name for info in infos]
    return {name for name in names if any(other.startswith(name + ".") for other in names)}
