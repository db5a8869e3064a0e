"""Batch norms folded into the convolutions before them, for the length of a search.

A frozen model in eval mode applies each BatchNorm as a fixed per-channel affine map; when it
directly follows a convolution, the map folds into that convolution's weights and bias
(``torch.nn.utils.fusion.fuse_conv_bn_eval``). The forward and the backward to the input then
skip one full read and write of every normalized feature map: on a CPU that is about a fifth
of a step of EfficientNet-Lite0 at batch 1 and half of it at batch 8 (bench/speed.py).

Which convolution feeds which norm is read off one forward pass (the norm's input is the very
tensor the convolution returned), and the folded model must give the probed layers the same
values as the original on that input, or nothing is folded. That check runs in exact float32
(TF32 off): PyTorch's default TF32 convolutions on CUDA round each layer to about 1e-3, which
over ResNet-50's 43 convolutions moved layer3's values beyond the check's tolerance, so on a
GPU nothing was ever folded (bench/speed_gpu.py's kernel profile, 2026-11-27). The original
modules are put back when the block ends, so the caller's model is unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .probing import Probe

# Exact types only: subclasses (timm's BatchNormAct2d) add work of their own after the norm.
FOLDABLE_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
Pair = tuple[str, str]  # (convolution path, batch-norm path)


@contextmanager
def batchnorms_folded(model: nn.Module, example: torch.Tensor,
                      layers: Sequence[str]) -> Iterator[list[Pair]]:
    """Inside the block, foldable norms of ``model`` (in eval mode) are folded; yields the pairs.

    ``example`` (B, ...) is one model input; ``layers`` are the probed layer paths, whose values
    must not change (a probed convolution keeps its norm apart, since folding changes its output).
    """
    with _exact_float32():
        pairs, before = _pairs_and_values(model, example, layers)
    originals = _swap(model, pairs)
    try:
        with _exact_float32():
            same = not pairs or _same_values(model, example, layers, before)
        if not same:
            _restore(model, originals)
            originals, pairs = {}, []
        yield pairs
    finally:
        _restore(model, originals)


@contextmanager
def _exact_float32() -> Iterator[None]:
    """Float32 convolutions and matrix products without TF32 inside the block (restored after)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = before


def _pairs_and_values(model: nn.Module, example: torch.Tensor,
                      layers: Sequence[str]) -> tuple[list[Pair], dict[str, torch.Tensor]]:
    """(convolution, norm) pairs where the norm reads the convolution's output, and the probed
    layers' values on ``example``, from one forward pass without gradients."""
    # id(output) -> (conv path, output): the output is kept alive, so its id stays unique.
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    pairs: list[Pair] = []
    handles = []
    modules = dict(model.named_modules())

    def conv_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(output, torch.Tensor):
                produced[id(output)] = (name, output)
        return hook

    def norm_hook(name: str):
        def hook(module: nn.Module, inputs: tuple) -> None:
            if inputs and id(inputs[0]) in produced:
                pairs.append((produced[id(inputs[0])][0], name))
        return hook

    for name, module in modules.items():
        if isinstance(module, _ConvNd) and not module.transposed and name not in layers:
            handles.append(module.register_forward_hook(conv_hook(name)))
        elif type(module) in FOLDABLE_NORMS and module.running_mean is not None:
            handles.append(module.register_forward_pre_hook(norm_hook(name)))
    try:
        with Probe(model, layers) as probe, torch.no_grad():
            before = {k: v.detach().clone() for k, v in probe.run(example).items()}
    finally:
        for handle in handles:
            handle.remove()
    # A convolution read by two norms, or a norm run twice, stays as it is.
    convs, norms = Counter(c for c, _ in pairs), Counter(n for _, n in pairs)
    return [(c, n) for c, n in pairs if convs[c] == norms[n] == 1
            and _compatible(modules[c], modules[n])], before


def _compatible(conv: nn.Module, norm: nn.Module) -> bool:
    return not conv.training and not norm.training and norm.num_features == conv.out_channels


def _same_values(model: nn.Module, example: torch.Tensor, layers: Sequence[str],
                 before: dict[str, torch.Tensor]) -> bool:
    with Probe(model, layers) as probe, torch.no_grad():
        after = probe.run(example)
    for name, value in before.items():
        scale = value.abs().max().item() + 1e-6
        if not torch.allclose(after[name], value, rtol=1e-3, atol=1e-4 * scale):
            return False
    return True


def _swap(model: nn.Module, pairs: list[Pair]) -> dict[str, nn.Module]:
    """Put each fused convolution in its convolution's place and an identity in its norm's;
    returns the replaced modules by path."""
    originals: dict[str, nn.Module] = {}
    for conv_path, norm_path in pairs:
        conv, norm = model.get_submodule(conv_path), model.get_submodule(norm_path)
        fused = fuse_conv_bn_eval(conv, norm)
        fused.requires_grad_(False)
        _set(model, conv_path, fused)
        _set(model, norm_path, nn.Identity())
        originals[conv_path], originals[norm_path] = conv, norm
    return originals


def _restore(model: nn.Module, originals: dict[str, nn.Module]) -> None:
    for path, module in originals.items():
        _set(model, path, module)


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    # get_submodule("") is the model itself, or the model an adapter wraps.
    setattr(model.get_submodule(parent), leaf, module)
