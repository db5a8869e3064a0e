"""Dead units: let gradients through inactive ReLUs for the first steps of a search.

From a random start a unit can sit where every ReLU on its path is off; its input gradient
is then exactly zero and a search never moves. During warm-up, ReLU and ReLU6 modules keep
their forward output but pass the gradient through their flat parts scaled by ``slope``
(as a leaky ReLU would), so the search can reach a region where the unit fires. The hooks
are removed when warm-up ends; the final result uses the model's true gradients.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6)


class _LeakyGradient(torch.autograd.Function):
    """Forward: the activation's output y. Backward: to the activation's input x, the gradient
    scaled by 1 where the activation is active and by ``slope`` where it is flat."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, low: float, high: float, slope: float):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high, slope)
        return y.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        low, high, slope = ctx.bounds
        active = (x > low) & (x < high)
        scale = torch.where(active, torch.ones_like(grad), torch.full_like(grad, slope))
        return grad * scale, None, None, None, None


class LeakyGradients:
    """Context manager: leaky backward through every ReLU/ReLU6 of ``model`` while open."""

    def __init__(self, model: nn.Module, slope: float = 0.1, active: bool = True):
        self.model, self.slope, self.active = model, slope, active
        self._handles: list = []
        self._inplace: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> LeakyGradients:
        if not self.active:
            return self
        for module in self.model.modules():
            if isinstance(module, ACTIVATIONS):
                # An in-place activation overwrites its input, which the backward needs.
                self._inplace.append((module, module.inplace))
                module.inplace = False
                # Prepended, so that a probe on this activation reads the rerouted output.
                self._handles.append(module.register_forward_hook(self._hook, prepend=True))
        return self

    def _hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        high = 6.0 if isinstance(module, nn.ReLU6) else float("inf")
        return _LeakyGradient.apply(inputs[0], output, 0.0, high, self.slope)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks and restore ``inplace`` (early, when warm-up ends; idempotent)."""
        for handle in self._handles:
            handle.remove()
        for module, flag in self._inplace:
            module.inplace = flag
        self._handles.clear()
        self._inplace.clear()
