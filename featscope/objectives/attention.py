"""Attention as an objective: how much one head of a self-attention layer attends from one
token to another.

``Attention(layer, head, source, target)`` is softmax(q·kᵀ · scale) of head ``head`` at row
``source`` (the attending token) and column ``target`` (the attended one); with no target it
is the attention ``source`` pays to the other tokens (1 minus its attention to itself). A
token is ``"cls"`` (the class token) or a patch position (Y, X) on the layer's patch grid (an
index along a plain sequence), as the layer's token layout reads it.

The attention weights are computed from what the layer exposes (``attention_reads``):

- timm's ``Attention`` (ViT, DeiT, EVA ...): the queries and keys (B, heads, T, d) that its
  ``q_norm`` and ``k_norm`` submodules return, with its ``scale`` — fused attention kernels
  never materialize the weights, so they are recomputed for the one row the objective reads;
- any layer whose output already is attention weights (B, heads, T, T).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..engine.layout import Layout, infer_layout
from ..engine.probing import LayerInfo, resolve_layer
from ..errors import FeatscopeError
from .base import ActivationMap, Objective

Token = str | tuple[int, ...]  # "cls", or a patch position


@dataclass(frozen=True)
class AttentionReads:
    """Where a layer's attention weights come from: ``queries`` and ``keys`` (B, heads, T, d)
    scaled by ``scale``, or ``weights`` (B, heads, T, T) themselves."""

    queries: str | None = None
    keys: str | None = None
    scale: float = 1.0
    weights: str | None = None

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({self.weights} if self.weights else {self.queries, self.keys})


def attention_reads(model: nn.Module, layer: str) -> AttentionReads:
    """How to read the attention weights of ``layer`` (see the module docstring)."""
    module = resolve_layer(model, layer)
    children = dict(module.named_children())
    if "q_norm" in children and "k_norm" in children and hasattr(module, "scale"):
        return AttentionReads(f"{layer}.q_norm", f"{layer}.k_norm", float(module.scale))
    if isinstance(module, nn.MultiheadAttention):
        raise FeatscopeError(f"layer {layer!r} is an nn.MultiheadAttention, whose attention "
                             "weights are not returned to hooks when it is called with "
                             "need_weights=False; target a layer whose output is the weights "
                             "(B, heads, T, T), or a timm Attention")
    return AttentionReads(weights=layer)


class Attention(Objective):
    """Head ``head``'s attention from token ``source`` to token ``target`` at ``layer``
    (to all other tokens when ``target`` is None)."""

    def __init__(self, layer: str, head: int, source: Token, target: Token | None,
                 reads: AttentionReads, layout: Layout | None = None, prefix: int | None = None):
        self.layer, self.head, self.reads = layer, int(head), reads
        self.source, self.target = source, target
        self.layout, self.prefix = layout, prefix
        self.layers = reads.layers
        to = "" if target is None else "/" + _text(target)
        self.name = f"{layer}:head{head}@{_text(source)}{to}"

    def layouts_needed(self) -> frozenset[str]:
        return frozenset() if self.layout is not None else frozenset({self.layer})

    def bind(self, class_names: Sequence[str] | None = None,
             layers: Mapping[str, LayerInfo] | None = None) -> Objective:
        if self.layout is not None or not layers or self.layer not in layers:
            return self
        info = layers[self.layer]
        bound = copy.copy(self)
        if self.reads.weights:  # (heads, T, T): the tokens are its last axis
            bound.layout = infer_layout((info.shape[-1], 1), 0, info.clues, order="BTC",
                                        prefix=self.prefix, layer=self.layer)
        else:
            bound.layout = info.layout("BTC" if info.batch_axis == 0 else "TBC", self.prefix)
        return bound

    def _index(self, token: Token) -> int:
        if self.layout is None:
            if token == "cls" or len(token) != 1:
                raise FeatscopeError(f"attention target {self.name!r} needs the layer's token "
                                     "layout: render it with the model (bind it first)")
            return token[0]
        return self.layout.token_index(token)

    def score(self, acts: ActivationMap) -> torch.Tensor:
        source = self._index(self.source)
        reads = self.reads
        if reads.weights:
            weights = acts[reads.weights]
            self._check(weights, weights.shape[-1])
            row = weights[:, self.head, source]  # (B, T)
        else:
            queries, keys = acts[reads.queries], acts[reads.keys]
            self._check(queries, queries.shape[-2])
            q = queries[:, self.head, source]  # (B, d)
            logits = torch.einsum("bd,btd->bt", q, keys[:, self.head]) * reads.scale
            row = logits.softmax(dim=-1)  # (B, T)
        if self.target is None:
            return 1 - row[:, source]
        return row[:, self._index(self.target)]

    def _check(self, tensor: torch.Tensor, tokens: int) -> None:
        if tensor.dim() != 4:
            raise FeatscopeError(f"layer {self.layer!r} gives attention as shape "
                                 f"{tuple(tensor.shape)}, not (B, heads, T, T) or queries and "
                                 "keys (B, heads, T, d)")
        heads = tensor.shape[1]
        if not 0 <= self.head < heads:
            raise FeatscopeError(f"head {self.head} is out of range for layer {self.layer!r}: "
                                 f"it has {heads} heads, valid 0..{heads - 1}")
        for token in (self.source, self.target):
            if token is not None and not 0 <= self._index(token) < tokens:
                raise FeatscopeError(f"token {_text(token)} is outside layer {self.layer!r}'s "
                                     f"{tokens} tokens")


def _text(token: Token) -> str:
    return token if isinstance(token, str) else ",".join(map(str, token))
