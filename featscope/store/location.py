"""Where a results store keeps its files: a local folder, or object storage through fsspec.

A root with a scheme (``s3://bucket/atlas``, ``gs://…``, ``memory://…``, ``file:///shared/…``)
is opened with fsspec (installed with the ``atlas`` extra; s3 and gs need ``s3fs`` / ``gcsfs``),
any other root is a local folder. Paths inside a location are relative, with ``/``.

Every write is whole or absent: a local file is written to a temporary file and renamed
(``files.writing.atomic_write``), a ``file://`` URL the same way through fsspec, and an
object store puts an object in one request, which appears whole or not at all.
"""

from __future__ import annotations

import posixpath
import uuid
from pathlib import Path

from ..errors import FeatscopeError
from ..files.writing import atomic_write

LOCAL_PROTOCOLS = ("file", "local")


def is_url(root: str | Path) -> bool:
    """Whether ``root`` names fsspec storage (it has a scheme) rather than a local folder."""
    return isinstance(root, str) and "://" in root


class Location:
    """A folder, local or at an fsspec URL: read, write whole, list, by relative path."""

    def __init__(self, root: str | Path):
        self.root = root
        self.url = is_url(root)
        if not self.url:
            self.path = Path(root)
            return
        try:
            import fsspec
        except ImportError:
            raise FeatscopeError(f"the store {root!r} is a URL, which needs fsspec: pip install "
                                 "'featscope[atlas]' (and s3fs or gcsfs for s3:// or gs://)"
                                 ) from None
        try:
            self.fs, self.base = fsspec.core.url_to_fs(root)
        except (ImportError, ValueError) as error:  # an unknown scheme, or its package missing
            raise FeatscopeError(f"cannot open the store {root!r}: {error}") from None
        self._made: set[str] = set()

    def __str__(self) -> str:
        return str(self.root)

    def _remote(self, relative: str) -> str:
        return posixpath.join(self.base, relative)

    def read_bytes(self, relative: str) -> bytes:
        """The file's bytes; OSError (FileNotFoundError) when it is missing."""
        if not self.url:
            return (self.path / relative).read_bytes()
        return self.fs.cat_file(self._remote(relative))

    def exists(self, relative: str) -> bool:
        """Whether the file is there."""
        if not self.url:
            return (self.path / relative).is_file()
        return bool(self.fs.exists(self._remote(relative)))

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write the file whole (see the module docstring)."""
        if not self.url:
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda stream: stream.write(data))
            return
        path = self._remote(relative)
        folder = posixpath.dirname(path)
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        if self._local_disk():
            name = f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp"
            temporary = posixpath.join(folder, name)
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, path)
        else:
            self.fs.pipe_file(path, data)

    def _local_disk(self) -> bool:
        protocols = self.fs.protocol
        protocols = protocols if isinstance(protocols, tuple) else (protocols,)
        return bool(set(protocols) & set(LOCAL_PROTOCOLS))

    def names(self, relative: str) -> list[str]:
        """The names of the files in a folder (none when it does not exist)."""
        if not self.url:
            try:
                return sorted(p.name for p in (self.path / relative).iterdir() if p.is_file())
            except OSError:
                return []
        try:
            found = self.fs.ls(self._remote(relative), detail=False)
        except OSError:
            return []
        return sorted(posixpath.basename(str(p).rstrip("/")) for p in found)
