"""The ``featscope`` command line: one module per command, options declared once
(``options``), the shared rendering flow (``session``)."""

from . import (  # noqa: F401  (registers commands)
    atlas,
    classes,
    evaluate,
    gallery,
    layers,
    overview,
    render,
    sheet,
)
from .app import app, main

__all__ = ["app", "main"]
