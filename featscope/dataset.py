"""Deprecated: ``featscope.dataset`` moved to ``featscope.analysis.examples``; this name works
for one release (0.2) and warns."""

import warnings

from .analysis.examples import Example, Examples, crop, peak_box, top_examples  # noqa: F401
from .files.images import find_images  # noqa: F401

warnings.warn("featscope.dataset is deprecated and will be removed in 0.3; import from "
              "featscope.analysis.examples (or the featscope package) instead", DeprecationWarning,
              stacklevel=2)
