"""Deprecated: ``featscope.accentuation`` moved to ``featscope.rendering.api``; this name works
for one release (0.2) and warns."""

import warnings

from .rendering.api import accentuate  # noqa: F401

warnings.warn("featscope.accentuation is deprecated and will be removed in 0.3; import from "
              "featscope.rendering.api (or the featscope package) instead", DeprecationWarning,
              stacklevel=2)
