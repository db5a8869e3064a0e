"""The ``featscope`` command line."""

from __future__ import annotations

import sys

from ..errors import FeatscopeError
from ..search import NonFiniteError
from . import (classes, evaluate, gallery, layers, overview,  # noqa: F401  (registers commands)
               render, sheet)
from .common import app, console


def main() -> None:
    """Entry point: user errors become one clear line and a non-zero exit, not a traceback."""
    try:
        app()  # usage errors (unknown option, missing argument) are reported by typer
    except FeatscopeError as error:
        console.print(f"[red]error[/]: {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except NonFiniteError as error:
        console.print(f"[red]error[/]: {error}", highlight=False, soft_wrap=True)
        sys.exit(3)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
