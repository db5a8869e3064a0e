"""Progress bars that work in a terminal and in a notebook without ipywidgets.

``tqdm.auto`` picks the notebook widget in Jupyter and warns ("IProgress not found") when
ipywidgets is missing; here the widget is used only when it can be drawn, otherwise the
plain text bar.
"""

from __future__ import annotations

import importlib.util

from tqdm import std


def _bar_class() -> type[std.tqdm]:
    if importlib.util.find_spec("ipywidgets") is None:
        return std.tqdm
    from tqdm.auto import tqdm as auto  # the notebook widget in Jupyter, the text bar elsewhere

    return auto


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "step") -> std.tqdm:
    """A bar over ``total`` items (disabled: a no-op bar with the same interface)."""
    if not enabled:
        return std.tqdm(total=total, disable=True)
    return _bar_class()(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
