"""featscope: see what a neural network has learned, by gradient search on its inputs.

The package, from the bottom up (``docs/architecture.md`` draws the data flow):

- ``files``, ``randomness``, ``progress``, ``drawing``: writing and reading files, per-unit
  random generators, progress bars, pictures;
- ``models``: loading any PyTorch model with its input size, normalization and classes;
- ``engine``: gradient search over any variables, probes, the model in search mode;
- ``objectives``, ``params``, ``transforms``: what is maximized, the searched variables,
  the random changes of each step;
- ``inputs``: input kinds (images, signals, volumes, vectors, tokens);
- ``rendering``: recipes, the batching plan, ``render``;
- ``store``: the settings-keyed results store and ``summary.json``;
- ``analysis``: dataset examples, quality metrics; ``views``: sheets and the gallery;
- ``cli``: the ``featscope`` command.
"""

from .analysis.examples import top_examples
from .drawing.grid import grid
from .engine import (
                     MODEL_OUTPUT,
                     GradientSearch,
                     NonFiniteError,
                     Probe,
                     SearchModel,
                     SearchResult,
                     ascend,
                     descend,
                     frozen,
                     list_layers,
                     search,
)
from .errors import FeatscopeError
from .models import LoadedModel, Normalization, load_model
from .objectives import (
                     IMAGE,
                     Channel,
                     ClassLogit,
                     ClassProbability,
                     Closeness,
                     Custom,
                     Direction,
                     Diversity,
                     Neuron,
                     Objective,
                     channel,
                     class_logit,
                     class_probability,
                     custom,
                     direction,
                     neuron,
)
from .rendering import (
                     AUTO,
                     PRESETS,
                     Recipe,
                     RenderError,
                     RenderResult,
                     accentuate,
                     default_batch_size,
                     preset_for,
                     register_preset,
                     render,
)

__all__ = [
    "FeatscopeError", "LoadedModel", "Normalization", "load_model", "Objective", "Channel",
    "Neuron", "ClassLogit", "ClassProbability", "Direction", "Custom", "Closeness",
    "Diversity", "IMAGE", "channel", "neuron", "class_logit", "class_probability", "direction",
    "custom", "MODEL_OUTPUT", "Probe", "SearchModel", "frozen", "list_layers", "AUTO",
    "PRESETS", "Recipe", "RenderError", "RenderResult", "render", "accentuate",
    "register_preset", "preset_for", "default_batch_size", "GradientSearch", "NonFiniteError",
    "SearchResult", "ascend", "descend", "search", "grid", "top_examples",
]
