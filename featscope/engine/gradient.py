"""Gradient search over arbitrary variables.

Gradient descent minimizes F(v) by  v <- v - lr * dF/dv ; gradient ascent maximizes it by
v <- v + lr * dF/dv. Here v is any set of tensors chosen by the caller (an input image, a
latent code, a vector), never implicitly a model's weights. The update is either that plain
rule (optionally with the gradient normalized, as in the Keras recipe) or any
``torch.optim`` optimizer.

As ``torch.optim`` optimizers do, a ``GradientSearch`` takes step hooks instead of callers
wrapping the loop: ``register_step_pre_hook(hook(search, step))`` runs before F is evaluated,
``register_step_post_hook(hook(search, step, values))`` after the update, with F's value
(detached; (B,) for a batched search) and the variables' gradients still in place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch.utils.hooks import RemovableHandle

OptimizerFactory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
GradNorm = Literal["none", "l2", "rms"]
PreHook = Callable[["GradientSearch", int], None]
PostHook = Callable[["GradientSearch", int, torch.Tensor], None]


class NonFiniteError(ArithmeticError):
    """F or its gradient became NaN/Inf; the variables keep their last finite values."""

    def __init__(self, step: int, history: list[float]):
        self.step = step
        self.history = history
        super().__init__(
            f"the objective or its gradient became NaN/Inf at step {step}; the search stopped "
            "there and the variables keep their values from before that step. Try a smaller "
            "learning rate or a bounded parameterization."
        )


@dataclass
class SearchResult:
    variables: list[torch.Tensor]
    history: list[float] = field(default_factory=list)  # F before each update, original sign

    @property
    def final(self) -> float:
        return self.history[-1]


class GradientSearch:
    """One search: ``step(F)`` evaluates F, differentiates it w.r.t. the variables, updates them.

    ``F`` returns a scalar tensor. With ``batched=True`` it may return one value per batch
    element (B,) instead: B independent searches in one batch, whose sum is differentiated.
    With ``optimizer=None`` the plain rule is used with step size ``lr``; otherwise
    ``optimizer`` is a ``torch.optim.Optimizer`` subclass (built with ``lr``) or a factory
    ``params -> optimizer``.
    """

    def __init__(self, variables: Sequence[torch.Tensor], *, maximize: bool = False,
                 lr: float = 0.1, optimizer: type[torch.optim.Optimizer] | OptimizerFactory | None = None,
                 grad_norm: GradNorm = "none", batched: bool = False):
        if not variables:
            raise ValueError("GradientSearch needs at least one variable to search over")
        for v in variables:
            if not v.is_leaf or not v.dtype.is_floating_point:
                raise ValueError("search variables must be floating-point leaf tensors")
            v.requires_grad_(True)
        self.variables = list(variables)
        self.maximize = maximize
        self.lr = lr
        self.grad_norm = grad_norm
        self.batched = batched
        self.history: list[float] = []
        self.optimizer = self._build_optimizer(optimizer)
        self._pre_hooks: OrderedDict[int, PreHook] = OrderedDict()
        self._post_hooks: OrderedDict[int, PostHook] = OrderedDict()

    def _build_optimizer(self, optimizer) -> torch.optim.Optimizer | None:
        if optimizer is None:
            return None
        if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
            return optimizer(self.variables, lr=self.lr)
        return optimizer(self.variables)

    def set_lr(self, lr: float) -> None:
        """The step size from the next update on (a schedule's, set by a pre-hook)."""
        self.lr = lr
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def register_step_pre_hook(self, hook: PreHook) -> RemovableHandle:
        """``hook(search, step)`` before each step's evaluation of F."""
        handle = RemovableHandle(self._pre_hooks)
        self._pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: PostHook) -> RemovableHandle:
        """``hook(search, step, values)`` after each update; gradients are still in place."""
        handle = RemovableHandle(self._post_hooks)
        self._post_hooks[handle.id] = hook
        return handle

    def step(self, objective: Callable[[], torch.Tensor]) -> float:
        """Evaluate F once, update the variables, return F's value before the update."""
        index = len(self.history)
        for hook in list(self._pre_hooks.values()):
            hook(self, index)
        for v in self.variables:
            v.grad = None
        values = objective()
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"F must return a tensor, not {type(values).__name__}")
        if values.numel() != 1 and not self.batched:
            raise ValueError(
                f"F must return a scalar (one element), as backward() needs; it returned shape "
                f"{tuple(values.shape)}. Reduce it (e.g. .sum() or .mean()), or use "
                "GradientSearch(batched=True) for independent searches in one batch")
        value = values.sum()
        if not value.requires_grad:
            raise ValueError("F does not depend on the search variables (it has no gradient)")
        # Ascent on F is descent on -F; optimizers then always minimize.
        (-value if self.maximize else value).backward()
        grads = [v.grad if v.grad is not None else torch.zeros_like(v) for v in self.variables]
        finite = torch.isfinite(value) & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        # One device-to-host transfer per step for both numbers (each is a GPU sync).
        current, ok = torch.stack([value.detach(), finite.to(value.dtype)]).tolist()
        if not ok:
            raise NonFiniteError(index, list(self.history))
        self.history.append(current)
        self._apply(grads)
        for hook in list(self._post_hooks.values()):
            hook(self, index, values.detach())
        return current

    @torch.no_grad()
    def _apply(self, grads: list[torch.Tensor]) -> None:
        if self.grad_norm != "none":
            for g in grads:
                g.div_(_grad_scale(g, self.grad_norm))
        if self.optimizer is not None:
            self.optimizer.step()
            return
        for v, g in zip(self.variables, grads):
            v.sub_(self.lr * g)  # g is the gradient of the minimized quantity (-F for ascent)


def _grad_scale(g: torch.Tensor, how: GradNorm) -> torch.Tensor:
    """Per-sample norm of a (B, ...) gradient, shaped to broadcast against it."""
    flat = g.reshape(g.shape[0], -1) if g.dim() > 1 else g.reshape(1, -1)
    norm = flat.norm(dim=1) if how == "l2" else flat.pow(2).mean(dim=1).sqrt()
    shape = (-1,) + (1,) * (g.dim() - 1) if g.dim() > 1 else ()
    return norm.clamp_min(1e-12).reshape(shape)


def search(objective: Callable[[], torch.Tensor], variables: Sequence[torch.Tensor], *,
           steps: int, maximize: bool = False, lr: float = 0.1,
           optimizer: type[torch.optim.Optimizer] | OptimizerFactory | None = None,
           grad_norm: GradNorm = "none") -> SearchResult:
    """Run ``steps`` updates of gradient descent (or ascent with ``maximize=True``) on the
    scalar F returned by ``objective()``."""
    engine = GradientSearch(variables, maximize=maximize, lr=lr, optimizer=optimizer,
                            grad_norm=grad_norm)
    for _ in range(steps):
        engine.step(objective)
    return SearchResult(engine.variables, engine.history)


def ascend(objective: Callable[[], torch.Tensor], variables: Sequence[torch.Tensor], *,
           steps: int, lr: float = 0.1, **kwargs) -> SearchResult:
    """Gradient ascent: v <- v + lr * dF/dv (or ``optimizer`` maximizing F)."""
    return search(objective, variables, steps=steps, maximize=True, lr=lr, **kwargs)


def descend(objective: Callable[[], torch.Tensor], variables: Sequence[torch.Tensor], *,
            steps: int, lr: float = 0.1, **kwargs) -> SearchResult:
    """Gradient descent: v <- v - lr * dF/dv (or ``optimizer`` minimizing F)."""
    return search(objective, variables, steps=steps, maximize=False, lr=lr, **kwargs)
