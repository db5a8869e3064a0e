"""Quality metrics of visualizations: is the unit really driven by it, and is it legible?

- ``activation_ratio``: the objective on the visualization divided by its maximum over a
  folder of natural images (> 1: stronger than any of them);
- ``robustness``: the objective under random small transforms of the image (shifts, scales,
  rotations) relative to the untransformed image (1: fully robust);
- ``transferability``: whether another model classifies a class visualization as its class,
  top-1 / top-5, at full size and as thumbnails area-downscaled to 64 and 48 px and resized
  back to that model's input (legible objects survive, high-frequency texture does not).

Images are (B, C, H, W) in [0, 1]; every function returns per-image values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine.device import module_device
from ..engine.probing import Probe, frozen
from ..errors import FeatscopeError
from ..files.images import fit
from ..models import LoadedModel
from ..objectives.base import Objective
from ..objectives.binding import bind_objectives
from ..objectives.scoring import batch_scores
from ..randomness import UnitRandom, unit_seed
from ..rendering.plan import INFERENCE_BATCH
from ..transforms.affine import per_image, resize_to, small_transforms

THUMBNAILS = (64, 48)


def probed_batches(model: LoadedModel, images: torch.Tensor, layers: Sequence[str],
                   chunk: int = INFERENCE_BATCH) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(start, the outputs of ``layers``) for each ``chunk`` of ``images`` (B, C, H, W) in
    [0, 1], resized to the model's input size and normalized; without gradients, also in the
    caller's code between batches, until the last batch."""
    device = module_device(model.module)
    size = tuple(model.input_shape[1:])
    with torch.no_grad(), frozen(model.module), Probe(model.module, list(layers)) as probe:
        for i in range(0, images.shape[0], chunk):
            yield i, probe.run(model.normalization(resize_to(images[i:i + chunk].to(device),
                                                             size)))


@torch.no_grad()
def objective_values(model: LoadedModel, objectives: Sequence[Objective], images: torch.Tensor,
                     chunk: int = INFERENCE_BATCH) -> torch.Tensor:
    """(B,) objective i on image i, with the image resized to the model's input size."""
    if len(objectives) != images.shape[0]:
        raise FeatscopeError(f"{len(objectives)} objectives for {images.shape[0]} images")
    objectives = bind_objectives(objectives, model.module, model.input_shape, model.class_names)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    return torch.cat([batch_scores(objectives[i:i + chunk], acts).cpu()
                      for i, acts in probed_batches(model, images, layers, chunk)])


def natural_scores(model: LoadedModel, objectives: Sequence[Objective],
                   naturals: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """(B, N) objective i on natural image j ((C, H, W) images fitted to the input size)."""
    if len(naturals) == 0:
        raise FeatscopeError("no natural images to compare with")
    size = tuple(model.input_shape[1:])
    stack = torch.stack([fit(n, size) for n in naturals])  # (N, C, H, W)
    objectives = bind_objectives(objectives, model.module, model.input_shape, model.class_names)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    return torch.cat([every_score(objectives, acts).cpu()
                      for _, acts in probed_batches(model, stack, layers)], 1)


def every_score(objectives: Sequence[Objective], acts: dict[str, torch.Tensor]) -> torch.Tensor:
    """(U, b) each of the (bound) ``objectives`` on every image of one probed batch: the
    natural images are read once for all objectives, not once per objective."""
    return torch.stack([objective.score(acts).float() for objective in objectives])


def natural_maxima(model: LoadedModel, objectives: Sequence[Objective],
                   naturals: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B,) each objective's maximum over natural images (C, H, W) fitted to the input size."""
    return natural_scores(model, objectives, naturals).max(1).values


def activation_ratio(model: LoadedModel, objectives: Sequence[Objective], images: torch.Tensor,
                     naturals: Sequence[torch.Tensor] = (),
                     scores: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) objective on each visualization / its maximum over the natural images
    (``scores``: their (B, N) ``natural_scores`` when already computed, in place of them).

    Meaningful when the natural maximum is positive (e.g. a channel after a ReLU, a class
    logit that some image supports); otherwise the value is NaN rather than a misleading sign.
    """
    reached = objective_values(model, objectives, images)
    if scores is None:
        scores = natural_scores(model, objectives, naturals)
    best = scores.max(1).values
    unknown = torch.full_like(best, float("nan"))
    return torch.where(best > 0, reached / best.clamp_min(1e-12), unknown)


def robustness(model: LoadedModel, objectives: Sequence[Objective], images: torch.Tensor,
               draws: int = 8, seed: int = 0, chunk: int = INFERENCE_BATCH) -> torch.Tensor:
    """(B,) mean objective over ``draws`` random small transforms / the untransformed value.

    Image i's transforms come from its objective's own generator (``unit_seed``), so its
    value does not depend on the other images, their order or ``chunk`` (images measured at
    once, which bounds the memory)."""
    size = tuple(model.input_shape[1:])
    objectives = bind_objectives(objectives, model.module, model.input_shape, model.class_names)
    transform = per_image(small_transforms(min(size)), size)  # each with its own draws
    values = []
    for start in range(0, images.shape[0], chunk):
        part, aims = resize_to(images[start:start + chunk], size), objectives[start:start + chunk]
        random = UnitRandom([unit_seed(seed, objective.name) for objective in aims])
        base = objective_values(model, aims, part)
        moved = torch.stack([objective_values(model, aims, transform(part, random))
                             for _ in range(draws)]).mean(0)
        values.append(moved / base.abs().clamp_min(1e-12) * base.sign())
    return torch.cat(values)


def thumbnail(images: torch.Tensor, side: int, size: tuple[int, int]) -> torch.Tensor:
    """Area-downscale (B, C, H, W) to ``side`` px, then bilinear back up to ``size``."""
    small = F.interpolate(images, size=(side, side), mode="area")
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False)


@dataclass
class Transfer:
    """Per image: the target class's rank among the judge's logits (0 = top-1) per view."""

    ranks: dict[str, torch.Tensor]  # view ("full", "64px", "48px") -> (B,) ranks

    def top(self, k: int) -> dict[str, torch.Tensor]:
        return {view: (r < k) for view, r in self.ranks.items()}

    def summary(self) -> dict[str, float]:
        """Fractions: {"top1_full": ..., "top5_full": ..., "top1_64px": ..., ...}."""
        return {f"top{k}_{view}": float(hit.float().mean())
                for k in (1, 5) for view, hit in self.top(k).items()}


def check_judge(judge: LoadedModel, channels: int, classes: Sequence[int],
                count: int | None = None) -> None:
    """Raise where ``judge`` cannot judge images of ``channels`` channels on ``classes``: it
    reads another number of channels, or a class is beyond its ``count`` classes (default:
    its class names', where it has them)."""
    if channels != judge.input_shape[0]:
        raise FeatscopeError(f"the judge {judge.name} takes {judge.input_shape[0]}-channel "
                             f"images; the images to judge have {channels}")
    count = count if count is not None else \
        (len(judge.class_names) if judge.class_names is not None else None)
    if count is not None and classes and max(classes) >= count:
        raise FeatscopeError(f"class {max(classes)} is out of range for the judge {judge.name} "
                             f"({count} classes)")


@torch.no_grad()
def transferability(judge: LoadedModel, classes: Sequence[int], images: torch.Tensor,
                    thumbnails: Sequence[int] = THUMBNAILS,
                    chunk: int = INFERENCE_BATCH) -> Transfer:
    """How the ``judge`` model ranks each image's target class, at full size and as thumbnails."""
    if len(classes) != images.shape[0]:
        raise FeatscopeError(f"{len(classes)} classes for {images.shape[0]} images")
    check_judge(judge, images.shape[1], classes)
    device = module_device(judge.module)
    size = tuple(judge.input_shape[1:])
    target = torch.tensor(list(classes))
    views = {"full": lambda x: resize_to(x, size)}
    views.update({f"{s}px": (lambda x, s=s: thumbnail(x, s, size)) for s in thumbnails})
    ranks = {}
    with frozen(judge.module):
        for name, view in views.items():
            logits = torch.cat([
                judge.module(judge.normalization(view(images[i:i + chunk].to(device)))).cpu()
                for i in range(0, images.shape[0], chunk)])
            check_judge(judge, images.shape[1], classes, count=logits.shape[1])
            own = logits.gather(1, target[:, None])
            ranks[name] = (logits > own).sum(1)
    return Transfer(ranks)
