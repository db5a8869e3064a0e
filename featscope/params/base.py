"""What a parameterization is, and the registry that names them.

A parameterization is "params + input function" (Lucid's ``param_f``): the leaf tensors a
search moves, and ``__call__() -> input``, (B, C, H, W) in [0, 1] for images. Searching in
another space than pixels changes which direction a gradient step takes.

Parameterizations are looked up by name (``--param NAME``, ``Recipe.param``); adding one is
one decorated factory::

    @register_parameterization("mine")
    def mine(shape, *, random, device, sd=0.01, **context) -> Parameterization: ...

A factory gets the batch's shape (B, ...), the units' randomness (``featscope.randomness``:
draw with ``per_element`` so that each unit's start is its own), the device, the start's
scale ``sd`` and context it may use or ignore: ``decorrelate`` (colour), ``spectrum``
(MACO's magnitude), ``normalization`` (the model's input normalization).

Variables with a domain (the faithful finish's ``bounded_pixels``, in [0, 1]) come with
``project``, which the search calls after each update to bring them back into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import FeatscopeError


@dataclass
class Parameterization:
    params: list[torch.Tensor]
    fn: Callable[[], torch.Tensor]
    kind: str
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # fixed tensors (not searched)
    # Brings the variables back into their domain, in place; the search calls it after each
    # update (projected gradient search). None: every value of the variables is valid.
    project: Callable[[], None] | None = None

    def __call__(self) -> torch.Tensor:
        return self.fn()


ParamFactory = Callable[..., Parameterization]
PARAMETERIZATIONS: dict[str, ParamFactory] = {}


def register_parameterization(name: str) -> Callable[[ParamFactory], ParamFactory]:
    """Register an image parameterization factory under ``name``."""
    def register(factory: ParamFactory) -> ParamFactory:
        PARAMETERIZATIONS[name] = factory
        return factory
    return register


def parameterization(name: str) -> ParamFactory:
    """The factory registered as ``name``, or a clear error listing the valid names."""
    try:
        return PARAMETERIZATIONS[name]
    except KeyError:
        raise FeatscopeError(f"unknown parameterization {name!r}; valid: "
                             f"{', '.join(PARAMETERIZATIONS)}") from None
