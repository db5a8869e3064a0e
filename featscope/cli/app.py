"""The ``featscope`` command: the typer app, the console, and how errors end a command."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..engine.gradient import NonFiniteError
from ..errors import FeatscopeError

# Help texts are plain text: rich markup would swallow "[low, high]" and the like.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="See what a neural network has learned, by gradient search on its inputs.")
console = Console(stderr=True)

EXIT_USER_ERROR = 2  # bad input: one line says what is wrong and what is valid
EXIT_FAILED_UNITS = 3  # some units failed (NaN/Inf at every step size); the others are saved
EXIT_INTERRUPTED = 130  # Ctrl-C; finished units are saved


class UnitsFailed(Exception):
    """Raised by a command after saving everything, when some of its units failed."""


def log(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True, markup=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning[/]: {_escape(message)}", highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def main() -> None:
    """Entry point: user errors become one clear line and a non-zero exit, not a traceback."""
    try:
        app()  # usage errors (unknown option, missing argument) are reported by typer
    except FeatscopeError as error:
        console.print(f"[red]error[/]: {_escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except (NonFiniteError, UnitsFailed) as error:
        console.print(f"[red]error[/]: {_escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED_UNITS)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
