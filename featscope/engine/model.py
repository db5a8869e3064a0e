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

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
# A request's precision when not said: resolved per device by ``resolve_precision``.
AUTO_PRECISION = "auto"


def check_precision(precision: str, auto: bool = False) -> None:
    """``precision`` is one of PRECISIONS (or ``"auto"`` where ``auto``)."""
    valid = (AUTO_PRECISION, *PRECISIONS) if auto else PRECISIONS
    if precision not in valid:
        raise FeatscopeError(f"unknown precision {precision!r}; valid: {', '.join(valid)}")


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """``"auto"``: bfloat16 autocast on CUDA GPUs that compute it natively (compute capability
    8.0 and newer: A100, H100, RTX 30xx on), float32 elsewhere; other values stay as they are.

    On an H100 bfloat16 renders the ResNet-50 sheet of bench/speed_gpu.py in 10.7 s against
    13.9 s in float32, with the same pictures: held-out class images judged by the other model
    reached top-1 95/92/79 % at full size/64/48 px against float32's 93/89/81 %, and 16 units'
    bfloat16 images 0.993-0.996 of float32's activations (README, "On a GPU").
    """
    check_precision(precision, auto=True)
    if precision != AUTO_PRECISION:
        return precision  # type: ignore[return-value]
    native = device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)
    return "bfloat16" if native else "float32"


def channels_last_helps(device: torch.device, precision: str) -> bool:
    """Channels-last memory for 4-D inputs is faster on the CPU (about a quarter off a step of
    EfficientNet-Lite0, bench/speed.py) and on CUDA under autocast: on an H100, batch norms
    folded, a bfloat16 step of ResNet-50 took 26.3 ms channels-last against 31.8 contiguous at
    layer3.5, 31.1 against 33.1 at layer1.2; in float32 channels-last was 4-39 % slower
    (bench/speed_gpu.py, 2026-11-27)."""
    return device.type == "cpu" or (device.type == "cuda" and precision != "float32")


def cudnn_benchmark_helps(device: torch.device) -> bool:
    """Whether a search lets cuDNN time its convolution algorithms for the search's shapes
    (``torch.backends.cudnn.benchmark``). Not so far: on an H100 it left every step of
    ResNet-50 as fast as cuDNN's own choice (45.8 against 45.7 ms at layer3.5, float32; 31.6
    against 31.6 in bfloat16) and timing each new shape made the whole 64-unit sheet 29 s of
    rendering instead of 14 (bench/speed_gpu.py, bench/gpu_check.sh, 2026-11-27)."""
    return False


@contextmanager
def _cudnn_benchmark() -> Iterator[None]:
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class SearchModel:
    """``module`` prepared for a search over inputs, probed at ``layers``.

    ``fold_example()`` gives one model input (1, ...) to find and check the foldable batch
    norms (None: no folding). ``channels_last``: for 4-D (image) inputs (None: where
    ``channels_last_helps``); a model that fails with it (a ``.view()`` of a feature map) falls
    back on its first run. ``cudnn_benchmark`` (None: where ``cudnn_benchmark_helps``): cuDNN
    times its algorithms for the search's shapes; otherwise its setting is left as it is.
    """

    def __init__(self, module: nn.Module, device: torch.device, layers: Sequence[str], *,
                 precision: Precision = "float32", stop_early: bool = True,
                 fold_example: Callable[[], torch.Tensor] | None = None,
                 channels_last: bool | None = False, cudnn_benchmark: bool | None = None,
                 warmup: bool = False):
        check_precision(precision)
        self.module, self.device, self.layers = module, device, list(layers)
        self.precision, self.stop_early = precision, stop_early
        self.fold_example, self.warmup = fold_example, warmup
        self.channels_last = (channels_last_helps(device, precision) if channels_last is None
                              else channels_last)
        self.cudnn_benchmark = (cudnn_benchmark_helps(device) if cudnn_benchmark is None
                                else cudnn_benchmark)
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
            if self.cudnn_benchmark and self.device.type == "cuda":
                stack.enter_context(_cudnn_benchmark())
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
