"""Writing files: every write is atomic, and files get the mode a plain ``open()`` would give.

A write goes to a temporary file in the target's folder and is renamed over the target, so
a crash, Ctrl-C or a full disk never leaves a half-written file behind. ``tempfile`` creates
its files with mode 0600; the finished file is given ``0666 & ~umask`` instead, so that a
gallery copied to a web server or a shared folder is readable by others, as the user's
umask intends.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from ..errors import FeatscopeError

_umask_lock = threading.Lock()


def _file_mode() -> int:
    """0666 minus the process umask: the mode ``open(path, "w")`` creates files with."""
    with _umask_lock:  # the umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def prepare_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise FeatscopeError(f"cannot write to output folder {str(out)!r}: "
                             f"{error.strerror or error}") from None
    return out


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write(stream)``; the file appears whole or not at all."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def png_levels(image: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) in [0, 1] -> the 8-bit levels a PNG of it holds (uint8)."""
    return image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)


def as_saved(image: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) in [0, 1] as its PNG reads back (``files.images.load_image``): what is
    measured of a saved image, measured before it is read from disk."""
    return png_levels(image).float().div(255)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1], C in {1, 2, 3, 4} -> an 8-bit PIL image (L, LA, RGB or RGBA)."""
    array = png_levels(image).cpu().numpy()
    array = np.transpose(array, (1, 2, 0))
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def save_png(image: torch.Tensor | Image.Image, path: Path) -> Path:
    picture = image if isinstance(image, Image.Image) else to_pil(image)
    atomic_write(path, lambda stream: picture.save(stream, format="PNG", compress_level=1))
    return path


def save_npy(array: torch.Tensor, path: Path) -> Path:
    atomic_write(path, lambda stream: np.save(stream, array.detach().cpu().numpy()))
    return path


def json_bytes(data: object) -> bytes:
    """``data`` as the JSON text every file of the project is written in."""
    return (json.dumps(data, indent=2, default=_jsonable) + "\n").encode()


def write_json(data: object, path: Path) -> Path:
    text = json_bytes(data)
    atomic_write(path, lambda stream: stream.write(text))
    return path


def write_text(text: str, path: Path) -> Path:
    atomic_write(path, lambda stream: stream.write(text.encode()))
    return path


def copy_file(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically, unless ``target`` already holds the same bytes."""
    data = source.read_bytes()
    try:
        if target.read_bytes() == data:
            return target
    except OSError:
        pass
    atomic_write(target, lambda stream: stream.write(data))
    return target


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
