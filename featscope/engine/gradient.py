"""Gradient search over arbitrary variables.

Gradient descent minimizes F(v) by  v <- v - lr * dF/dv ; gradient ascent maximizes it by
v <- v + lr * dF/dv. Here v is any set of tensors chosen by the caller (an input image, a
latent code, a vector), never implicitly a model's weights. The update is either that plain
rule (optionally with the gradient normalized, as in the Keras recipe) or any
``torch.optim`` optimizer, optionally followed by a projection back into the variables'
domain (``project``: projected gradient search, v <- P(v + lr * dF/dv)).

As ``torch.optim`` optimizers do, a ``GradientSearch`` takes step hooks instead of callers
wrapping the loop: ``register_step_pre_hook(hook(search, step))`` runs before F is evaluated,
``register_step_post_hook(hook(search, step, values))`` after the update, with F's value
(detached; (B,) for a batched search) and the variables' gradients still in place.

NaN/Inf: by default each step brings F and a finiteness flag to the host (one device sync)
and stops before a non-finite update. With ``check_every=N`` the flag stays on the device:
an update after a non-finite step is undone there (the variables keep their last finite
values), and the host looks every N steps, or at ``check()``, raising at the first bad step.
Such a step has no host synchronization, so on CUDA it can be captured as a CUDA graph
(``graph_after``) and replayed: one launch per step instead of hundreds.
"""

from __future__ import annotations

import warnings
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

    ``project``: called after each update, as part of it (in a CUDA graph too), to bring the
    variables back into their domain in place: projected gradient search.
    ``check_every``: steps between the host's looks at NaN/Inf (see the module docstring);
    with more than 1, ``step`` returns None and ``history`` is brought over when read.
    ``graph_after``: on CUDA, with ``check_every > 1``, steps ``0 .. graph_after - 1`` run
    as usual (on a side stream, as warm-up) and the next one is captured as a CUDA graph that
    every later step replays. F must then have static shapes and no host synchronization, an
    optimizer must be capturable (``capturable=True``), and post hooks get the graph's own
    output tensors, which the next step overwrites. A capture that fails warns and the search
    goes on without it.
    """

    def __init__(self, variables: Sequence[torch.Tensor], *, maximize: bool = False,
                 lr: float = 0.1,
                 optimizer: type[torch.optim.Optimizer] | OptimizerFactory | None = None,
                 grad_norm: GradNorm = "none", batched: bool = False, check_every: int = 1,
                 graph_after: int | None = None, project: Callable[[], None] | None = None):
        if not variables:
            raise ValueError("GradientSearch needs at least one variable to search over")
        for v in variables:
            if not v.is_leaf or not v.dtype.is_floating_point:
                raise ValueError("search variables must be floating-point leaf tensors")
            v.requires_grad_(True)
        if check_every < 1:
            raise ValueError(f"check_every must be at least 1 (got {check_every})")
        if graph_after is not None:
            if check_every == 1:
                raise ValueError("a CUDA graph cannot check for NaN on the host at every step: "
                                 "give check_every > 1 with graph_after")
            if graph_after < 1 or any(v.device.type != "cuda" for v in variables):
                raise ValueError("graph_after needs variables on a CUDA device and at least one "
                                 "warm-up step")
        self.variables = list(variables)
        self.maximize = maximize
        self.lr = lr
        self.grad_norm = grad_norm
        self.batched = batched
        self.check_every = check_every
        self.graph_after = graph_after
        self.project = project
        self.steps = 0  # steps taken
        self._history: list[float] = []  # F of the checked steps
        self._pending: list[torch.Tensor] = []  # (2,) [F, finite] of each step since the check
        self._finite: torch.Tensor | None = None  # () bool on the device: every step so far
        self._saved: list[torch.Tensor] = []  # the variables before the step's update
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static: tuple[torch.Tensor, torch.Tensor] | None = None  # the graph's outputs
        self._side: torch.cuda.Stream | None = None
        self.optimizer = self._build_optimizer(optimizer)
        self._pre_hooks: OrderedDict[int, PreHook] = OrderedDict()
        self._post_hooks: OrderedDict[int, PostHook] = OrderedDict()

    @property
    def graphed(self) -> bool:
        """Whether steps are replayed from a captured CUDA graph."""
        return self._graph is not None

    @property
    def history(self) -> list[float]:
        """F before each update (original sign). With ``check_every > 1`` reading it checks the
        steps not yet checked (one device sync), which raises ``NonFiniteError`` for a NaN."""
        self.check()
        return self._history

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

    def step(self, objective: Callable[[], torch.Tensor]) -> float | None:
        """Evaluate F once, update the variables; F's value before the update, or None when
        the check is deferred (``check_every > 1``)."""
        index = self.steps
        for hook in list(self._pre_hooks.values()):
            hook(self, index)
        current = None
        if self.check_every == 1:
            values, value, finite, grads = self._evaluate(objective)
            # One device-to-host transfer per step for both numbers (each is a GPU sync).
            current, ok = torch.stack([value.detach(), finite.to(value.dtype)]).tolist()
            del value  # with its autograd graph: nothing of a step's graph outlives the step
            if not ok:
                raise NonFiniteError(index, list(self._history))
            self._history.append(current)
            self._apply(grads)
            values = values.detach()
        else:
            values, record = self._deferred_step(objective, index)
            self._pending.append(record)
        self.steps += 1
        if self.check_every > 1 and self.steps % self.check_every == 0:
            self.check()
        for hook in list(self._post_hooks.values()):
            hook(self, index, values)
        return current

    def check(self) -> None:
        """Bring the steps not yet checked to the host (one device sync): their F values join
        ``history``; at the first NaN/Inf among them ``NonFiniteError`` is raised (the
        variables keep their values from before that step)."""
        if not self._pending:
            return
        records = torch.stack(self._pending).tolist()
        self._pending = []
        for value, ok in records:
            if not ok:
                raise NonFiniteError(len(self._history), list(self._history))
            self._history.append(value)

    def _evaluate(self, objective: Callable[[], torch.Tensor]):
        """F and its gradient: (values, their sum, finite (), the variables' gradients)."""
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
        return values, value, finite, grads

    def _deferred_step(self, objective: Callable[[], torch.Tensor],
                       index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A step without host synchronization: replayed, captured, or run (on a side stream
        while it warms up for a capture). Returns (values, record (2,) [F, finite])."""
        if self._graph is not None:
            self._graph.replay()
            values, record = self._static
            return values, record.clone()
        if self.graph_after is None:
            return self._device_step(objective)
        if index >= self.graph_after and self._capture(objective):
            values, record = self._static
            return values, record.clone()
        side = self._side_stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self._device_step(objective)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _side_stream(self) -> torch.cuda.Stream:
        """The stream of the warm-up steps and of the capture (made on first use)."""
        if self._side is None:
            self._side = torch.cuda.Stream(self.variables[0].device)
        return self._side

    def _capture(self, objective: Callable[[], torch.Tensor]) -> bool:
        """Capture one step as a CUDA graph and run it; False (with a warning) if it fails."""
        graph = torch.cuda.CUDAGraph()
        for v in self.variables:
            v.grad = None  # the captured backward allocates them in the graph's memory
        try:
            # On the warm-up's stream: autograd runs each node's backward on the stream of its
            # forward, and a leaf's gradient accumulator made during the warm-up on another
            # stream would make the capture wait on it, which invalidates the capture.
            with torch.cuda.graph(graph, stream=self._side_stream()):
                static = self._device_step(objective)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as error:
            warnings.warn(f"the search step could not be captured as a CUDA graph ({error}); "
                          "it runs without one", RuntimeWarning, stacklevel=4)
            self.graph_after = None
            return False
        self._graph, self._static = graph, static
        graph.replay()
        return True

    def _device_step(self, objective: Callable[[], torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """F, its gradient and the update, all on the device: an update after any non-finite
        step is undone, so the variables keep their last finite values."""
        values, value, finite, grads = self._evaluate(objective)
        with torch.no_grad():
            if self._finite is None:
                self._finite = torch.ones((), dtype=torch.bool, device=value.device)
                self._saved = [torch.empty_like(v) for v in self.variables]
            self._finite.logical_and_(finite)
            for saved, v in zip(self._saved, self.variables):
                saved.copy_(v)
            self._apply(grads)
            for saved, v in zip(self._saved, self.variables):
                v.copy_(torch.where(self._finite, v, saved))
            record = torch.stack([value.detach(), finite.to(value.dtype)])
        return values.detach(), record

    @torch.no_grad()
    def _apply(self, grads: list[torch.Tensor]) -> None:
        if self.grad_norm != "none":
            for g in grads:
                g.div_(_grad_scale(g, self.grad_norm))
        if self.optimizer is not None:
            self.optimizer.step()
        else:
            for v, g in zip(self.variables, grads):
                v.sub_(self.lr * g)  # g is the gradient of the minimized quantity (-F for ascent)
        if self.project is not None:
            self.project()


def _grad_scale(g: torch.Tensor, how: GradNorm) -> torch.Tensor:
    """Per-sample norm of a (B, ...) gradient, shaped to broadcast against it."""
    flat = g.reshape(g.shape[0], -1) if g.dim() > 1 else g.reshape(1, -1)
    norm = flat.norm(dim=1) if how == "l2" else flat.pow(2).mean(dim=1).sqrt()
    shape = (-1,) + (1,) * (g.dim() - 1) if g.dim() > 1 else ()
    return norm.clamp_min(1e-12).reshape(shape)


def search(objective: Callable[[], torch.Tensor], variables: Sequence[torch.Tensor], *,
           steps: int, maximize: bool = False, lr: float = 0.1,
           optimizer: type[torch.optim.Optimizer] | OptimizerFactory | None = None,
           grad_norm: GradNorm = "none", check_every: int = 1) -> SearchResult:
    """Run ``steps`` updates of gradient descent (or ascent with ``maximize=True``) on the
    scalar F returned by ``objective()``; ``check_every`` as in ``GradientSearch``."""
    engine = GradientSearch(variables, maximize=maximize, lr=lr, optimizer=optimizer,
                            grad_norm=grad_norm, check_every=check_every)
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
