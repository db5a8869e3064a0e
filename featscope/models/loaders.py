"""Loaders for models from other sources: torchvision, timm, files (torch.export, TorchScript,
pickled modules, ONNX), each returning a ``LoadedModel`` with the input size and normalization
taken from the source's own metadata where it has some.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import FeatscopeError, did_you_mean
from .archives import archive_kind
from .base import LoadedModel, Normalization
from .exported import exported_program_model
from .hub import hub_offline, hub_unreachable
from .imagenet import imagenet_class_names
from .metadata import described
from .weights import apply_weights

OFFLINE_HINT = ("pass a local state dict with --weights FILE (weights=FILE in Python), or "
                "random_weights=True in Python for an untrained model")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _download_error(source: str, name: str, reason: str) -> FeatscopeError:
    return FeatscopeError(f"cannot download {source} weights for {name!r} ({reason}); "
                          f"{OFFLINE_HINT}")


def torchvision_model(name: str, weights: str | None = None,
                      random_weights: bool = False) -> LoadedModel:
    """``torchvision:NAME``; input size, normalization and classes from its default weights'
    metadata, also with ``weights`` (a local copy or fine-tune of those: same preprocessing)
    or ``random_weights`` (no download)."""
    try:
        import torchvision.models as tvm
    except ImportError:
        raise FeatscopeError("torchvision:NAME models need torchvision: "
                             "pip install 'featscope[torchvision]'") from None
    available = tvm.list_models(module=tvm)  # the ImageNet classifiers
    if name not in available:
        raise FeatscopeError(f"unknown torchvision model {name!r}.{did_you_mean(name, available)}")
    default = tvm.get_model_weights(name).DEFAULT
    notes: tuple[str, ...] = ()
    if weights is None and not random_weights:
        try:
            module = tvm.get_model(name, weights=default)
        except Exception as error:  # urllib / hub errors when offline
            raise _download_error("torchvision", name, _first_line(error)) from None
    else:
        module = tvm.get_model(name, weights=None)
        if weights is not None:
            notes = apply_weights(module, weights)
    preprocess = default.transforms()
    size = int(getattr(preprocess, "crop_size", [224])[0])
    classes = tuple(default.meta.get("categories") or imagenet_class_names())
    return LoadedModel(module.eval(), f"torchvision:{name}", (3, size, size),
                       Normalization(tuple(preprocess.mean), tuple(preprocess.std)), classes,
                       normalization_source="torchvision weights", notes=notes)


def _timm_pretrained(name: str) -> nn.Module:
    """timm's model with its pretrained weights. Those on the Hugging Face Hub (nearly all)
    come from the local cache if there, else are downloaded after one quick check that the
    Hub answers; others are downloaded by timm (through torch hub's cache)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise FeatscopeError(f"timm has no pretrained weights for {name!r}; {OFFLINE_HINT}")
    if cfg.hf_hub_id:
        try:
            with hub_offline():
                return timm.create_model(name, pretrained=True)
        except Exception:  # not in the cache: try the network below
            pass
        reason = hub_unreachable(cfg.hf_hub_id)
        if reason is not None:
            raise _download_error("timm", name, f"{reason}; not in the local Hugging Face "
                                                "cache either")
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as error:  # huggingface_hub / urllib errors
        raise _download_error("timm", name, _first_line(error)) from None


def timm_model(name: str, weights: str | None = None, random_weights: bool = False) -> LoadedModel:
    """``timm:NAME``; input size and normalization from timm's ``pretrained_cfg``, also with
    ``weights`` or ``random_weights`` (no download)."""
    try:
        import timm
    except ImportError:
        raise FeatscopeError("timm:NAME models need timm: pip install 'featscope[timm]'") from None
    if not timm.is_model(name):
        hint = did_you_mean(name, timm.list_models())
        raise FeatscopeError(f"unknown timm model {name!r}.{hint}")
    notes: tuple[str, ...] = ()
    if weights is None and not random_weights:
        module = _timm_pretrained(name)
    else:
        module = timm.create_model(name, pretrained=False)
        if weights is not None:
            notes = apply_weights(module, weights)
    classes = imagenet_class_names() if getattr(module, "num_classes", 0) == 1000 else None
    return replace(described(module, f"timm:{name}"), class_names=classes, notes=notes)


def _torchscript(path: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():
            # Deprecated in current PyTorch in favour of torch.export; it still works.
            warnings.filterwarnings("ignore", r"`torch\.jit\.load` is deprecated",
                                    FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise FeatscopeError(f"cannot load TorchScript file {str(path)!r}: "
                             f"{_first_line(error)}") from None


def _unreadable(path: Path, error: Exception) -> FeatscopeError:
    return FeatscopeError(
        f"cannot read model file {str(path)!r} ({error.__class__.__name__}). Valid model "
        "files: torch.export (.pt2), TorchScript (.pt), a pickled nn.Module (with "
        "--trust-pickle), ONNX (.onnx)")


def _trusted_pickle(path: Path, trust_pickle: bool) -> object:
    if not trust_pickle:
        raise FeatscopeError(
            f"{str(path)!r} is a pickled Python object; loading it runs arbitrary code from the "
            "file. If you trust its source, pass --trust-pickle (trust_pickle=True in Python); "
            "safer: save a state dict and use --model package.module:factory --weights FILE")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # missing classes (AttributeError/ModuleNotFoundError) and others
        raise FeatscopeError(
            f"cannot unpickle {str(path)!r}: {_first_line(error)}. The classes of a pickled "
            "model must be importable (run from the folder of its code, or set "
            "PYTHONPATH)") from None


def pickled_module(path: Path, trust_pickle: bool) -> nn.Module:
    """A whole ``nn.Module`` saved with ``torch.save(model)`` (only with ``trust_pickle``)."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # Only a pickle that names classes (a pickled object) says "Unsupported global".
        if "Unsupported global" not in str(error):
            raise _unreadable(path, error) from None
        content = _trusted_pickle(path, trust_pickle)
    except Exception as error:
        raise _unreadable(path, error) from None
    if isinstance(content, dict):
        raise FeatscopeError(
            f"{str(path)!r} is a state dict (weights only, no architecture): give the "
            "architecture with --model package.module:factory (or torchvision:NAME, timm:NAME) "
            f"and this file with --weights {path}")
    if not isinstance(content, nn.Module):
        raise FeatscopeError(f"{str(path)!r} holds a {type(content).__name__}, not a model")
    return content


def _onnx_input_shape(path: Path) -> tuple[int, ...] | None:
    """The first graph input's shape without the batch dim, if every dim is fixed."""
    import onnx
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0
            for d in inputs[0].type.tensor_type.shape.dim]
    return tuple(dims[1:]) if len(dims) > 1 and all(dims[1:]) else None


def onnx_module(path: Path, input_shape: Sequence[int] | None) -> tuple[nn.Module, tuple[int, ...]]:
    """An ONNX file converted to a PyTorch ``fx`` module by onnx2torch, and its input shape;
    its layers are its graph's nodes (named like ``conv1/Conv``), probed like any other."""
    try:
        from onnx2torch import convert
    except ImportError:
        raise FeatscopeError("ONNX models need onnx2torch: pip install 'featscope[onnx]'") from None
    try:
        module = convert(str(path))
        shape = tuple(input_shape) if input_shape else _onnx_input_shape(path)
    except Exception as error:  # bad protobuf, unsupported operator, ...
        raise FeatscopeError(f"cannot convert ONNX file {str(path)!r} to PyTorch: "
                             f"{_first_line(error)}") from None
    if shape is None:
        raise FeatscopeError(f"ONNX file {str(path)!r} has dynamic input dims: give "
                             "--input-shape, e.g. 3x224x224 (no batch dim)")
    return module, shape


def model_file(path: Path, input_shape: Sequence[int] | None = None, trust_pickle: bool = False,
               weights: str | None = None) -> LoadedModel:
    """A model file, by its content: torch.export, TorchScript, ONNX or a pickled module;
    ``weights`` (a state dict file) replaces its own."""
    if path.suffix == ".safetensors":
        raise FeatscopeError(
            f"{str(path)!r} holds weights only: give the architecture with --model "
            f"package.module:factory (or torchvision:NAME, timm:NAME) and --weights {path}")
    kind = archive_kind(path)
    if kind == "torch.export" or path.suffix == ".pt2":
        return exported_program_model(path, input_shape, weights)
    if path.suffix == ".onnx":
        module, shape = onnx_module(path, input_shape)
        input_shape = shape
    elif kind == "torchscript":
        module = _torchscript(path)
    else:
        module = pickled_module(path, trust_pickle)
    notes = apply_weights(module, weights) if weights is not None else ()
    return replace(described(module, str(path), input_shape), notes=notes)
