"""The model in search mode: everything done to a model for the length of a search.

Inside ``with SearchModel(...) as model:`` the module is on the search's device, frozen
(eval mode, no weight gradients), its batch norms folded into the convolutions before them
(when an example input is given; see ``fusion``), in channels-last memory where that is
faster, hooked only at the probed layers with the forward pass stopped at the deepest one,
and with leaky ReLU gradients while a warm-up lasts. ``model.run(x)`` returns the probed
activations, computed under autocast for a reduced ``precision``. On exit all of it is
undone and the module is back where and as it was. The benchmarks use the same class, so
what they time is what a search runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Literal

import torch
from torch import nn

from ..errors import FeatscopeError
from .device import module_device
from .fusion import batchnorms_folded
from .probing import Probe, frozen
from .warmup import LeakyGradients

Precision = Literal["float32", "bfloat16", "float16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise FeatscopeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


def channels_last_helps(device: torch.device, precision: str) -> bool:
    """Channels-last memory for 4-D inputs is faster on the CPU (about a quarter off a step of
    EfficientNet-Lite0, bench/speed.py) and on CUDA under autocast."""
    return device.type == "cpu" or (device.type == "cuda" and precision != "float32")


class SearchModel:
    """``module`` prepared for a search over inputs, probed at ``layers``.

    ``fold_example()`` gives one model input (1, ...) to find and check the foldable batch
    norms (None: no folding). ``channels_last``: for 4-D (image) inputs; a model that fails
    with it (a ``.view()`` of a feature map) falls back on its first run.
    """

    def __init__(self, module: nn.Module, device: torch.device, layers: Sequence[str], *,
                 precision: Precision = "float32", stop_early: bool = True,
                 fold_example: Callable[[], torch.Tensor] | None = None,
                 channels_last: bool = False, warmup: bool = False):
        check_precision(precision)
        self.module, self.device, self.layers = module, device, list(layers)
        self.precision, self.stop_early = precision, stop_early
        self.fold_example, self.warmup = fold_example, warmup
        self.channels_last = channels_last
        self._verified = False
        self._stack: ExitStack | None = None
        self._home: torch.device | None = None
        self.probe: Probe | None = None
        self.leaky: LeakyGradients | None = None

    def __enter__(self) -> SearchModel:
        self._home = module_device(self.module)
        stack = ExitStack()
        try:
            stack.enter_context(frozen(self.module.to(self.device)))
            if self.fold_example is not None:
                stack.enter_context(batchnorms_folded(self.module, self.fold_example(),
                                                      self.layers))
            if self.channels_last:
                self.module.to(memory_format=torch.channels_last)
                stack.callback(self._contiguous)
            self.probe = stack.enter_context(Probe(self.module, self.layers,
                                                   stop_early=self.stop_early))
            self.leaky = stack.enter_context(LeakyGradients(self.module, active=self.warmup))
        except BaseException:
            stack.close()
            self.module.to(self._home)
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._stack is not None:
                self._stack.close()
        finally:
            self.module.to(self._home)
            self._stack = None

    def _contiguous(self) -> None:
        self.module.to(memory_format=torch.contiguous_format)

    def end_warmup(self) -> None:
        """The model's true gradients from now on (idempotent)."""
        if self.leaky is not None:
            self.leaky.close()

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The probed layers' outputs for the model input ``x`` (B, ...), in float32."""
        try:
            acts = self._run(x)
        except RuntimeError:
            if self._verified or not self.channels_last:
                raise
            self.channels_last = False  # e.g. a .view() that needs contiguous feature maps
            self._contiguous()
            acts = self._run(x)
        self._verified = True
        return acts

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "float32":
            return self.probe.run(x)
        # No cast cache: weights are frozen (nothing to cache), and CUDA graphs require it off.
        with torch.autocast(self.device.type, dtype=getattr(torch, self.precision),
                            cache_enabled=False):
            acts = self.probe.run(x)
        return {name: act.float() for name, act in acts.items()}
