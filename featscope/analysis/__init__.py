"""Analysis of models and visualizations: the natural images that excite a unit most
(dataset examples), quality metrics, the route check (does a visualization travel through the
network as its unit's natural images do), what a classifier says about an image, and all of
these measured at once as summary.json records them (``measure``)."""

from .classify import probabilities
from .examples import (
    Example,
    Examples,
    cached_examples,
    crop,
    merge_examples,
    peak_box,
    scan_examples,
    top_examples,
)
from .metrics import (
                      THUMBNAILS,
                      Transfer,
                      activation_ratio,
                      natural_maxima,
                      natural_scores,
                      objective_values,
                      robustness,
                      thumbnail,
                      transferability,
)
from .report import Measured, load_judge, measure
from .routes import NaturalPaths, Route, path_layers, read_naturals, trace_routes

__all__ = ["probabilities", "Example", "Examples", "cached_examples", "crop", "merge_examples",
           "peak_box", "scan_examples",
           "top_examples", "THUMBNAILS", "Transfer", "activation_ratio", "natural_maxima",
           "natural_scores", "objective_values", "robustness", "thumbnail", "transferability",
           "Measured", "load_judge", "measure", "NaturalPaths", "Route", "path_layers",
           "read_naturals", "trace_routes"]
