"""What a module says about its input: its shape and normalization, read from timm's
``pretrained_cfg``, a timm ViT's ``patch_embed`` or the module's own attributes; and the values
of the ``normalize`` option that overrides them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import FeatscopeError
from .base import IDENTITY_SOURCE, LoadedModel, Normalization, identity_normalization

DEFAULT_INPUT_SHAPE = (3, 224, 224)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZE_FORMS = ("imagenet, none, MEAN,STD (one pair for every channel) or M1,..,Mc,S1,..,Sc "
                   "(c means then c stds, e.g. 0.5,0.5,0.5,0.25,0.25,0.25)")
ATTRIBUTE_SOURCE = "the model's normalization attribute"
TIMM_SOURCE = "timm pretrained_cfg"
_BAD_ATTRIBUTE = ("the model's normalization attribute must be (mean, std), {'mean': M, 'std': S} "
                  "or a Normalization, each a number or one per channel; ")


def channels_of(shape: Sequence[int]) -> int:
    """The channel count of an input shape without batch: C of (C, ...), 1 for a vector (F,)."""
    return int(shape[0]) if len(shape) >= 2 else 1


def parse_normalize(value: str, channels: int) -> tuple[Normalization, str]:
    """The normalization that a ``normalize`` value asks for, for inputs of ``channels``
    channels, and its source as the command line names it."""
    text = value.strip().lower()
    if text == "imagenet":
        if channels != 3:
            raise FeatscopeError(f"--normalize imagenet is for 3-channel images, but this model's "
                                 f"input has {channels} channel(s); valid: {NORMALIZE_FORMS}")
        return Normalization(IMAGENET_MEAN, IMAGENET_STD), "--normalize imagenet"
    if text == "none":
        return identity_normalization(channels), "--normalize none (inputs in [0, 1])"
    mean, std = _split_mean_std(value, channels)
    return Normalization(mean, std), f"--normalize {value.strip()}"


def _split_mean_std(value: str, channels: int) -> tuple[list[float], list[float]]:
    """'M,S' -> ([M] * channels, [S] * channels); 'M1,..,Mc,S1,..,Sc' -> ([M1..Mc], [S1..Sc])."""
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise FeatscopeError(f"bad --normalize {value!r}; valid: {NORMALIZE_FORMS}") from None
    if len(numbers) == 2:
        mean, std = [numbers[0]] * channels, [numbers[1]] * channels
    elif len(numbers) == 2 * channels:
        mean, std = numbers[:channels], numbers[channels:]
    else:
        raise FeatscopeError(
            f"bad --normalize {value!r}: {len(numbers)} numbers for an input of {channels} "
            f"channel(s), expected 2 or {2 * channels}; valid: {NORMALIZE_FORMS}")
    if not all(s > 0 for s in std):
        raise FeatscopeError(f"bad --normalize {value!r}: every std must be > 0; "
                             f"valid: {NORMALIZE_FORMS}")
    return mean, std


def _floats(value: object) -> list[float]:
    """A scalar, sequence or tensor of numbers as a list of floats."""
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.flatten().tolist()]
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]  # type: ignore[union-attr]


def _declared_mean_std(declared: object) -> tuple[object, object] | None:
    """(mean, std) of a (mean, std) pair, a dict with mean and std, or an object with both
    attributes (``Normalization``, torchvision's ``Normalize``); None for anything else (a
    layer named ``normalization``, a string)."""
    if isinstance(declared, dict) and {"mean", "std"} <= declared.keys():
        return declared["mean"], declared["std"]
    if isinstance(declared, (tuple, list, dict)):
        if isinstance(declared, dict) or len(declared) != 2:
            raise FeatscopeError(_BAD_ATTRIBUTE + f"got {declared!r}")
        return declared[0], declared[1]
    mean, std = getattr(declared, "mean", None), getattr(declared, "std", None)
    if mean is None or std is None or callable(mean) or callable(std):
        return None
    return mean, std


def normalization_from_module(module: nn.Module) -> tuple[Normalization, str] | None:
    """The normalization ``module`` declares, and where it was read: its ``normalization``
    attribute, else timm's ``pretrained_cfg`` mean and std; None when it declares none."""
    declared = _declared_mean_std(getattr(module, "normalization", None))
    if declared is not None:
        try:
            mean, std = _floats(declared[0]), _floats(declared[1])
        except (TypeError, ValueError):
            raise FeatscopeError(_BAD_ATTRIBUTE + f"got {declared!r}") from None
        return Normalization(mean, std), ATTRIBUTE_SOURCE
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("mean") and cfg.get("std"):
        return Normalization(_floats(cfg["mean"]), _floats(cfg["std"])), TIMM_SOURCE
    return None


def _in_channels(module: nn.Module, cfg: dict) -> int | None:
    """The input channels of the first convolution: a ViT's patch projection, or the layer
    that timm's ``pretrained_cfg["first_conv"]`` names (its ``in_chans`` may differ from 3)."""
    first = getattr(getattr(module, "patch_embed", None), "proj", None)
    if first is None and cfg.get("first_conv"):
        name = cfg["first_conv"]
        name = name if isinstance(name, str) else name[0]
        try:
            first = module.get_submodule(name)
        except AttributeError:
            return None
    channels = getattr(first, "in_channels", None)
    return int(channels) if channels else None


def input_shape_from_module(module: nn.Module) -> tuple[int, ...] | None:
    """The input shape (no batch) ``module`` declares: its ``input_shape`` attribute, else a
    timm ViT's ``patch_embed.img_size`` (the size it was built for, e.g. ``img_size=64``), else
    timm's ``pretrained_cfg["input_size"]``; None when it declares none."""
    declared = getattr(module, "input_shape", None)
    if declared is not None:
        try:
            return tuple(int(d) for d in declared)
        except (TypeError, ValueError):
            raise FeatscopeError("the model's input_shape attribute must be a sequence of "
                                 f"sizes without the batch dim, e.g. (3, 224, 224); got "
                                 f"{declared!r}") from None
    cfg = getattr(module, "pretrained_cfg", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    side = _patch_embed_size(module)
    if side is not None:
        return (_in_channels(module, cfg) or 3, *side)
    if cfg.get("input_size"):
        size = tuple(int(s) for s in cfg["input_size"])
        return (_in_channels(module, cfg) or size[0], *size[1:])
    return None


def fixed_input_size(module: nn.Module) -> tuple[int, int] | None:
    """The only (H, W) ``module`` takes, when its input size is fixed: a timm patch embedding
    that checks the size it was built for (its patch grid and position embeddings; not with
    ``dynamic_img_size``); None when any size may do, or nothing tells."""
    if not getattr(getattr(module, "patch_embed", None), "strict_img_size", False):
        return None
    return _patch_embed_size(module)


def _patch_embed_size(module: nn.Module) -> tuple[int, int] | None:
    """(H, W) a timm patch embedding was built for (``patch_embed.img_size``), or None."""
    size = getattr(getattr(module, "patch_embed", None), "img_size", None)
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def described(module: nn.Module, name: str,
              input_shape: Sequence[int] | None = None) -> LoadedModel:
    """``module`` in eval mode, with the input shape and normalization it declares (else
    ``DEFAULT_INPUT_SHAPE`` and none); ``input_shape`` overrides its own."""
    declared = input_shape or input_shape_from_module(module)
    shape = tuple(int(s) for s in declared or DEFAULT_INPUT_SHAPE)
    normalization, source = (normalization_from_module(module)
                             or (identity_normalization(channels_of(shape)), IDENTITY_SOURCE))
    return LoadedModel(module.eval(), name, shape, normalization,
                       normalization_source=source, input_shape_guessed=declared is None)
