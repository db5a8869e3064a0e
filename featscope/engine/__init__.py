"""The search engine and the model in search mode: gradient steps over any variables, probes
on chosen layers, and what is done to a frozen model for the length of a search."""

from .device import free_memory, module_device, resolve_device
from .gradient import GradientSearch, NonFiniteError, SearchResult, ascend, descend, search
from .model import (
           AUTO_PRECISION,
           PRECISIONS,
           Precision,
           SearchModel,
           channels_last_helps,
           check_precision,
           cudnn_benchmark_helps,
           resolve_precision,
)
from .probing import (
           MODEL_OUTPUT,
           LayerInfo,
           Probe,
           first_tensor,
           forward_bytes,
           frozen,
           list_layers,
           resolve_layer,
)

__all__ = ["free_memory", "module_device", "resolve_device", "GradientSearch", "NonFiniteError",
           "SearchResult", "ascend", "descend", "search", "PRECISIONS", "Precision", "SearchModel",
           "channels_last_helps", "check_precision", "cudnn_benchmark_helps",
           "resolve_precision", "AUTO_PRECISION", "MODEL_OUTPUT", "LayerInfo", "Probe",
           "first_tensor", "forward_bytes", "frozen", "list_layers", "resolve_layer"]
