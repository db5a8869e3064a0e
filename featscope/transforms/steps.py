"""Random transforms whose draws are made apart from their use, so that a search can make
every step's draws ahead and read them on its device.

A ``StepTransform`` is split in three: what one step draws for one image (``layout``, see
``randomness.Draw``), the parameters those draws give (``parameters``: vectorized over any
number of rows, each with the search's progress at its step), and their use on the images
(``apply``: device work only). Called as a plain transform, ``(image, random, progress)``, it
draws one step's parameters now, on the CPU. ``plan`` draws those of every step of a search
at once, from each unit's own generator in the same order, so a search that reads step s's
parameters from the plan (by a step index on the device) sees the same transforms with no
host work, no transfer and no synchronization per step, which a CUDA graph can then hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..randomness import Draw, UnitRandom, step_draws

Parameters = dict[str, torch.Tensor]
# (draws: (n, *shape) each, progress (n,) float64, image (H, W)) -> parameters, (n, ...) each
ParameterFn = Callable[[list[torch.Tensor], torch.Tensor, tuple[int, int]], Parameters]
# (images (B, C, H, W), parameters on their device, (B or 1, ...) each) -> transformed images
ApplyFn = Callable[[torch.Tensor, Parameters], torch.Tensor]

# At most this many numbers are drawn ahead for one batch's search (256 MiB in float32 on
# each side); a transform that draws more (noise on many large views) draws step by step.
PLAN_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class StepTransform:
    """A random transform in three parts (see the module docstring).

    ``shared``: a plain ``torch.Generator`` draws once for the whole batch (as Lucid does);
    ``UnitRandom`` always draws per image. ``capturable``: ``apply`` has no host
    synchronization, so a CUDA graph can hold it.
    """

    layout: tuple[Draw, ...]
    parameters: ParameterFn
    apply: ApplyFn
    shared: bool = False
    capturable: bool = True

    def __call__(self, image: torch.Tensor, random: UnitRandom | torch.Generator | None,
                 progress: float = 0.0) -> torch.Tensor:
        """(B, C, H, W) -> transformed, with this step's parameters drawn now."""
        draws = step_draws(random, image.shape[0], self.layout, self.shared) if self.layout \
            else []
        rows = draws[0].shape[0] if draws else image.shape[0]
        params = self.parameters(draws, torch.full((rows,), float(progress), dtype=torch.float64),
                                 tuple(image.shape[-2:]))
        return self.apply(image, {k: v.to(image.device) for k, v in params.items()})

    def elements(self, steps: int, batch: int) -> int:
        """How many numbers ``plan`` draws for ``steps`` steps of ``batch`` images."""
        return steps * batch * sum(math.prod(shape) for _, shape in self.layout)


def plan(transform: StepTransform, random: UnitRandom, progress: Sequence[float],
         size: tuple[int, int]) -> Parameters:
    """The parameters of every step, drawn now: (steps, B, ...) each, on the CPU; step s's are
    those of the s-th call ``transform(image, random, progress[s])`` on (B, C, *size) images."""
    steps, batch = len(progress), len(random)
    draws = random.ahead(steps, transform.layout)
    rows = torch.tensor(progress, dtype=torch.float64).repeat_interleave(batch)
    params = transform.parameters([d.reshape(steps * batch, *d.shape[2:]) for d in draws], rows,
                                  tuple(size))
    return {k: v.reshape(steps, batch, *v.shape[1:]) for k, v in params.items()}


def step_parameters(planned: Parameters, step: torch.Tensor) -> Parameters:
    """Step ``step``'s parameters (B, ...) from a plan on the device; ``step`` is a (1,) long
    tensor on the same device, so reading it needs no host work."""
    return {k: v.index_select(0, step)[0] for k, v in planned.items()}


def steady(transform: Callable[[torch.Tensor, object], torch.Tensor]) -> StepTransform:
    """A transform that draws nothing (a resize, the identity) as a ``StepTransform``."""
    return StepTransform((), lambda draws, progress, size: {},
                         lambda image, params: transform(image, None))
