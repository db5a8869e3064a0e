"""Where the features are in a layer's output: its layout.

A layout says which axis holds the batch, which the features, and which the map:

- ``BCHW``: features right after the batch, then any number of map dims (B, C, *S):
  convolutions, and feature vectors (B, C);
- ``BTC``: tokens (B, T, C), features last. The first P tokens are prefix tokens (CLS,
  distillation, register tokens); the other T - P are patch tokens, on a grid (H, W) when
  the model's input is an image (T = P + H·W), a plain sequence otherwise;
- ``TBC``: the same tokens sequence-first (T, B, C), as OpenAI CLIP's transformers and
  ``nn.MultiheadAttention`` without ``batch_first`` emit them;
- ``BHWC``: a channels-last map (B, H, W, C), as Swin and ConvNeXt blocks in timm emit.

Every objective reads a layer through ``Layout.feature_map`` (B, C, *S): the patch tokens or
the map, features second, prefix tokens left out; ``prefix_features`` gives the prefix
tokens (B, C, P). ``infer_layout`` decides a layer's layout, in one place, from the shape of
its output and its clues (``LayoutClues``): the module's type, the layers before it with the
same shape, what the model says (timm's ``num_prefix_tokens``, ``patch_embed.grid_size``)
and the input's size. A layout the user declares (``order``, ``prefix``) wins; one that does
not fit the output, or a shape that reads two ways with nothing to choose between them, is
a ``FeatscopeError`` naming the shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import FeatscopeError

Order = Literal["BCHW", "BTC", "TBC", "BHWC"]
ORDERS: tuple[str, ...] = ("BCHW", "BTC", "TBC", "BHWC")
LAST = "last"  # a declared "features last" (feature_axis=-1): BTC or BHWC by the number of dims
MAX_PREFIX = 16  # more leading tokens than this are not read as CLS/distillation/registers
Evidence = Literal["first", "last"]


@dataclass(frozen=True)
class Layout:
    """How to read a layer's output (see the module docstring)."""

    order: Order = "BCHW"
    prefix: int = 0  # tokens before the patch tokens (BTC, TBC)
    grid: tuple[int, ...] | None = None  # the patch tokens' grid (BTC, TBC); None: a sequence

    @property
    def batch_axis(self) -> int:
        return 1 if self.order == "TBC" else 0

    @property
    def tokens(self) -> bool:
        return self.order in ("BTC", "TBC")

    def batch_first(self, act: torch.Tensor) -> torch.Tensor:
        """The output with its batch on axis 0: (T, B, C) -> (B, T, C); others as they are."""
        return act.transpose(0, 1) if self.order == "TBC" else act

    def feature_map(self, act: torch.Tensor) -> torch.Tensor:
        """The layer's output -> (B, C, *S): the map, or the patch tokens on their grid."""
        if self.order == "BCHW":
            if act.dim() < 2:
                raise FeatscopeError(f"a layer output of shape {tuple(act.shape)} has no "
                                     "feature axis")
            return act
        if self.order == "BHWC":
            self._check_dims(act, 4)
            return act.movedim(-1, 1)
        tokens = self._tokens(act)[:, self.prefix:]  # (B, N, C)
        patches = tokens.transpose(1, 2)  # (B, C, N)
        return patches if self.grid is None else patches.reshape(*patches.shape[:2], *self.grid)

    def prefix_features(self, act: torch.Tensor) -> torch.Tensor:
        """The prefix tokens (B, C, P) of a token layout."""
        if not self.tokens:
            raise FeatscopeError(f"a {self.order} layer has no prefix tokens (CLS, registers)")
        return self._tokens(act)[:, :self.prefix].transpose(1, 2)

    def _tokens(self, act: torch.Tensor) -> torch.Tensor:
        """(B, T, C) checked against the prefix and the grid."""
        self._check_dims(act, 3)
        tokens = self.batch_first(act)
        count = self.prefix + (math.prod(self.grid) if self.grid else 0)
        if tokens.shape[1] < self.prefix + 1 or (self.grid and tokens.shape[1] != count):
            grid = "×".join(map(str, self.grid)) if self.grid else "N"
            raise FeatscopeError(f"{self.order} output {tuple(act.shape)} has {tokens.shape[1]} "
                                 f"tokens, not {self.prefix}+{grid}")
        return tokens

    def _check_dims(self, act: torch.Tensor, dims: int) -> None:
        if act.dim() != dims:
            raise FeatscopeError(f"a {self.order} layout needs a {dims}-D output; got shape "
                                 f"{tuple(act.shape)}")

    def token_index(self, position: str | tuple[int, ...]) -> int:
        """The index among all T tokens of ``"cls"`` (the first prefix token) or of patch
        ``position`` ((Y, X) on the grid, (i,) along a sequence)."""
        if not self.tokens:
            raise FeatscopeError(f"token positions apply to token layouts (BTC, TBC), not "
                                 f"{self.order}")
        if position == "cls":
            if not self.prefix:
                raise FeatscopeError("this layer has no prefix token (CLS): address a patch "
                                     "token as Y,X instead")
            return 0
        sizes = self.grid or (None,)
        if len(position) != len(sizes):
            raise FeatscopeError(f"position {position} needs {len(sizes)} coordinate(s) for "
                                 f"tokens {self.describe_tokens()}")
        if self.grid is None:
            return self.prefix + position[0]
        if not all(0 <= p < s for p, s in zip(position, self.grid)):
            raise FeatscopeError(f"position {position} is outside the patch grid "
                                 f"{'×'.join(map(str, self.grid))}")
        return self.prefix + position[0] * self.grid[1] + position[1]

    def describe_tokens(self) -> str:
        grid = "×".join(map(str, self.grid)) if self.grid else "N"
        return f"{self.prefix}+{grid}" if self.prefix else grid

    def features_of(self, shape: tuple[int, ...]) -> int:
        """The number of features of an output of ``shape`` (without the batch)."""
        return shape[0] if self.order == "BCHW" else shape[-1]

    def describe(self, shape: tuple[int, ...]) -> str:
        """How ``featscope layers`` shows a layer of output ``shape`` (without the batch)."""
        features = self.features_of(shape)
        if self.order == "BCHW":
            return str(features)
        if self.order == "BHWC":
            return f"map {shape[0]}×{shape[1]} (channels last), {features} features"
        grid = "×".join(map(str, self.grid)) if self.grid else str(shape[0] - self.prefix)
        tokens = f"{self.prefix}+{grid}" if self.prefix else grid
        first = "sequence-first " if self.order == "TBC" else ""
        return f"{first}tokens {tokens}, {features} features"


@dataclass(frozen=True)
class LayoutClues:
    """What is known about a layer beyond its output's shape.

    ``evidence``: the module (or the last layer before it with the same output shape) keeps
    its features first (convolutions, batch norms) or last (``nn.Linear``, ``nn.LayerNorm``).
    ``prefix``, ``grid``: the model's own count of prefix tokens and patch grid.
    ``image``: the model input's (H, W) when it is an image.
    """

    evidence: Evidence | None = None
    prefix: int | None = None
    grid: tuple[int, int] | None = None
    image: tuple[int, int] | None = None


def module_evidence(module: nn.Module, shape: tuple[int, ...]) -> Evidence | None:
    """Whether ``module``'s type says where the features of its output (full ``shape``) are."""
    name = type(module).__name__
    if isinstance(module, (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase,
                           nn.GroupNorm, nn.modules.pooling._AdaptiveAvgPoolNd,
                           nn.modules.pooling._AvgPoolNd, nn.modules.pooling._MaxPoolNd)):
        return "first"
    if name.endswith(("2d", "2D", "3d", "1d")):  # e.g. timm's LayerNorm2d: channels first
        return "first" if isinstance(module, nn.LayerNorm) else None
    if isinstance(module, nn.Linear) and shape and shape[-1] == module.out_features:
        return "last"
    if isinstance(module, nn.LayerNorm) and shape \
            and tuple(module.normalized_shape) == (shape[-1],):
        return "last"
    if isinstance(module, (nn.Embedding, nn.MultiheadAttention)):
        return "last"
    return None


def model_clues(model: nn.Module, input_shape: tuple[int, ...]) -> LayoutClues:
    """What ``model`` says about its tokens (timm's ``num_prefix_tokens`` and a patch
    embedding's ``grid_size``, on any of its modules) and its image input's (H, W)."""
    prefix = grid = None
    for module in model.modules():
        if prefix is None and isinstance(getattr(module, "num_prefix_tokens", None), int):
            prefix = module.num_prefix_tokens
        size = getattr(module, "grid_size", None)
        if grid is None and isinstance(size, (tuple, list)) and len(size) == 2 and all(
                isinstance(s, int) for s in size):
            grid = tuple(size)
    image = tuple(input_shape[1:]) if len(input_shape) == 3 else None
    return LayoutClues(None, prefix, grid, image)


def _grid(count: int, image: tuple[int, int]) -> tuple[int, int] | None:
    """The (h, w) with h·w = ``count`` and the image's aspect ratio, if there is one."""
    height, width = image
    for h in range(1, count + 1):
        if count % h == 0 and h * width == (count // h) * height:
            return h, count // h
    return None


def _token_splits(tokens: int, clues: LayoutClues,
                  declared: int | None) -> list[tuple[int, tuple[int, int] | None]]:
    """The ways ``tokens`` split into prefix tokens and patch tokens on a grid: [(P, grid)].

    A declared prefix count leaves one way; so does the model's own count (or none at all,
    for the patch tokens before the prefix is added), with the patch grid the model gives or
    the one of the image's aspect (none when the rest forms no grid). Otherwise: every count
    up to ``MAX_PREFIX`` whose rest forms a grid of the image's aspect (those whose grid
    divides the image, when there are such); none when no count does.
    """
    image = clues.image

    def grid_of(count: int) -> tuple[int, int] | None:
        if clues.grid is not None and math.prod(clues.grid) == count:
            return clues.grid
        return _grid(count, image) if image and count > 0 else None

    if declared is not None:
        return [(declared, grid_of(tokens - declared))]
    for known in dict.fromkeys(p for p in (clues.prefix, 0) if p is not None):
        if known < tokens and grid_of(tokens - known) is not None:
            return [(known, grid_of(tokens - known))]
    if clues.grid is not None and 0 <= tokens - math.prod(clues.grid) <= MAX_PREFIX:
        return [(tokens - math.prod(clues.grid), clues.grid)]
    if clues.prefix is not None or image is None:
        return [(clues.prefix or 0, None)]
    splits = [(p, grid) for p in range(0, min(MAX_PREFIX, tokens // 2) + 1)
              if (grid := _grid(tokens - p, image)) is not None]
    dividing = [(p, (h, w)) for p, (h, w) in splits if image[0] % h == 0 and image[1] % w == 0]
    return dividing or splits


def _is_map(size: tuple[int, ...], image: tuple[int, int]) -> bool:
    """Whether a map of ``size`` (h, w) could come from the image by one stride."""
    h, w = size
    height, width = image
    return 0 < h <= height and 0 < w <= width and h * width == w * height


def _describe(shape: tuple[int, ...], batch_axis: int) -> str:
    full = list(shape)
    full.insert(batch_axis, "B")
    return "(" + ", ".join(map(str, full)) + ")"


def infer_layout(shape: tuple[int, ...], batch_axis: int, clues: LayoutClues = LayoutClues(), *,
                 order: str | None = None, prefix: int | None = None,
                 layer: str = "this layer") -> Layout:
    """The layout of an output of ``shape`` (without its batch axis, which is ``batch_axis``).

    ``order`` (one of ``ORDERS``, or ``LAST``) and ``prefix`` are what the user declared.
    """
    where = f"layer {layer!r}'s output {_describe(shape, batch_axis)}"
    if order is not None and order not in (*ORDERS, LAST):
        raise FeatscopeError(f"unknown layout {order!r}; valid: {', '.join(ORDERS)}")
    if batch_axis not in (0, 1) or (batch_axis == 1 and len(shape) != 2):
        raise FeatscopeError(f"{where} has its batch on axis {batch_axis}: featscope reads "
                             "outputs (B, ...) and sequence-first tokens (T, B, C)")
    if order == LAST:
        order = {2: "BTC", 3: "BHWC"}.get(len(shape), "TBC" if batch_axis else None)
        if order is None:
            raise FeatscopeError(f"features last fit 3-D or 4-D outputs; {where} has "
                                 f"{len(shape) + 1} dims")
    if batch_axis == 1:
        if order not in (None, "TBC"):
            raise FeatscopeError(f"layout {order} does not fit {where}: its batch is on axis 1, "
                                 "so it is sequence-first tokens (--layout TBC)")
        return _tokens_layout("TBC", shape[0], clues, prefix, where)
    if order == "TBC":
        raise FeatscopeError(f"layout TBC does not fit {where}: its batch is on axis 0, not 1")
    needs = {"BTC": 2, "BHWC": 3}
    if order in needs and len(shape) != needs[order]:
        raise FeatscopeError(f"layout {order} needs a {needs[order] + 1}-D output (B, "
                             f"{'T, C' if order == 'BTC' else 'H, W, C'}); {where} has "
                             f"{len(shape) + 1} dims")
    if order == "BCHW" or (order is None and len(shape) not in (2, 3)):
        if not shape:
            raise FeatscopeError(f"{where} has no feature axis")
        return Layout("BCHW")
    if order == "BTC":
        return _tokens_layout("BTC", shape[0], clues, prefix, where)
    if order == "BHWC":
        return Layout("BHWC")
    return _guess(shape, clues, prefix, where)


def _tokens_layout(order: str, tokens: int, clues: LayoutClues, prefix: int | None,
                   where: str) -> Layout:
    if prefix is not None and not 0 <= prefix < tokens:
        raise FeatscopeError(f"{prefix} prefix tokens do not fit {where}: it has {tokens} "
                             f"tokens, valid 0..{tokens - 1}")
    splits = _token_splits(tokens, clues, prefix)
    if not splits:  # tokens that form no grid: a plain sequence
        return Layout(order, clues.prefix or 0, None)
    if len(splits) > 1:
        readings = " or ".join(f"{p}+{'×'.join(map(str, g))}" for p, g in splits)
        raise FeatscopeError(f"{where}: its {tokens} tokens split into prefix and patch tokens "
                             f"as {readings}; give the count of prefix tokens (--prefix-tokens "
                             "N, or num_prefix_tokens on the model)")
    p, grid = splits[0]
    return Layout(order, p, grid)


def _guess(shape: tuple[int, ...], clues: LayoutClues, prefix: int | None,
           where: str) -> Layout:
    """A 3-D or 4-D batch-first output with no declared layout."""
    if clues.evidence == "first":
        return Layout("BCHW")
    image = clues.image
    if len(shape) == 3:
        if clues.evidence == "last" or (image and _is_map(shape[:2], image)
                                        and not _is_map(shape[1:], image)):
            return Layout("BHWC")
        return Layout("BCHW")
    if clues.evidence == "last":
        return _tokens_layout("BTC", shape[0], clues, prefix, where)
    if image is None:
        return Layout("BCHW")
    # An image model's (B, a, b) with nothing said: a tokens of b features on a grid, or
    # a features over b positions of a flattened map.
    tokens = any(grid is not None for _, grid in _token_splits(shape[0], clues, prefix))
    flat_map = _grid(shape[1], image) is not None
    if tokens and flat_map:
        raise FeatscopeError(
            f"{where} reads two ways: {shape[0]} tokens of {shape[1]} features, or "
            f"{shape[0]} features over {shape[1]} positions; say which with --layout BTC or "
            "--layout BCHW (layout= in Python)")
    return _tokens_layout("BTC", shape[0], clues, prefix, where) if tokens else Layout("BCHW")
