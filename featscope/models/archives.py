"""Which kind of PyTorch archive a file is, from its content (not its name)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

ArchiveKind = Literal["torchscript", "torch.export"]


def archive_kind(path: str | Path) -> ArchiveKind | None:
    """"torchscript" for a ``torch.jit.save`` archive (a zip holding ``constants.pkl``),
    "torch.export" for a ``torch.export.save`` one (a zip whose ``archive_format`` is pt2),
    None for anything else (``torch.save`` zips hold ``data.pkl`` only)."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        formats = [n for n in names if n.endswith("/archive_format") or n == "archive_format"]
        if formats and archive.read(formats[0]).strip() == b"pt2":
            return "torch.export"
    return None
