"""Writing results: images and the ``summary.json`` that scripts read. Every write is atomic."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import FeatscopeError


def prepare_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise FeatscopeError(f"cannot write to output folder {str(out)!r}: {error.strerror}") from None
    return out


def atomic_write(path: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1], C in {1, 3} -> an 8-bit PIL image."""
    array = (image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy())
    array = np.transpose(array, (1, 2, 0))
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def save_png(image: torch.Tensor | Image.Image, path: Path) -> Path:
    picture = image if isinstance(image, Image.Image) else to_pil(image)
    atomic_write(path, lambda stream: picture.save(stream, format="PNG"))
    return path


def write_json(data: object, path: Path) -> Path:
    text = json.dumps(data, indent=2, default=_jsonable) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode()))
    return path


def write_text(text: str, path: Path) -> Path:
    atomic_write(path, lambda stream: stream.write(text.encode()))
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def file_stems(targets: Iterable[str]) -> list[str]:
    """A distinct, filesystem-safe file stem per target string."""
    stems: list[str] = []
    for target in targets:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", target).strip("-.") or "target"
        candidate, n = stem, 2
        while candidate in stems:
            candidate, n = f"{stem}-{n}", n + 1
        stems.append(candidate)
    return stems
