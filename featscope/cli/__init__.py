"""The ``featscope`` command line: one module per command, options declared once
(``options``), the shared rendering flow (``session``)."""

from . import classes, evaluate, gallery, layers, overview, render, sheet  # noqa: F401  (registers commands)
from .app import app, main

__all__ = ["app", "main"]
