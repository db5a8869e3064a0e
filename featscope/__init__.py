"""featscope: see what a neural network has learned, by gradient search on its inputs."""

from .errors import FeatscopeError
from .models import LoadedModel, Normalization, load_model
from .objectives import (Channel, ClassLogit, ClassProbability, Custom, Direction, Neuron,
                         Objective, channel, class_logit, class_probability, custom, direction,
                         neuron)
from .probing import MODEL_OUTPUT, Probe, frozen, list_layers
from .render import AUTO, PRESETS, Recipe, RenderResult, default_batch_size, preset_for, render
from .search import GradientSearch, NonFiniteError, SearchResult, ascend, descend, search
from .sheets import grid

__all__ = [
    "FeatscopeError", "LoadedModel", "Normalization", "load_model", "Objective", "Channel",
    "Neuron", "ClassLogit", "ClassProbability", "Direction", "Custom", "channel", "neuron",
    "class_logit", "class_probability", "direction", "custom", "MODEL_OUTPUT", "Probe", "frozen",
    "list_layers", "AUTO", "PRESETS", "Recipe", "RenderResult", "render", "preset_for",
    "default_batch_size", "GradientSearch", "NonFiniteError", "SearchResult", "ascend",
    "descend", "search", "grid",
]
