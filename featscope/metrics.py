"""Deprecated: ``featscope.metrics`` moved to ``featscope.analysis.metrics``; this name works
for one release (0.2) and warns."""

import warnings

from .analysis.metrics import (  # noqa: F401
                                THUMBNAILS,
                                Transfer,
                                activation_ratio,
                                natural_maxima,
                                objective_values,
                                robustness,
                                thumbnail,
                                transferability,
)

warnings.warn("featscope.metrics is deprecated and will be removed in 0.3; import from "
              "featscope.analysis.metrics instead", DeprecationWarning, stacklevel=2)
