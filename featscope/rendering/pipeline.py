"""The path from the searched variables to the model's input, for one batch.

parameterization -> image (B, C, H, W) in [0, 1] (seen through a growing canvas, when the
recipe has one) -> random transforms, crop views or an ensemble of augmented copies (each
image with its own unit's draws) -> resize to the model's input -> normalization -> model.
Inputs that are not images (signals, volumes, vectors, tokens, raw tensors) go straight from
their kind's parameterization to the model.

Transforms that draw apart from their use (``StepTransform``) have the draws of every step of
the search made when the pipeline is built, right after the start's, from each unit's own
generator in the order the steps would make them, and moved to the device once; a step then
reads its own by a step index on the device (``step_parameters``), so building a step's input
needs no host work, no transfer and no synchronization, and a CUDA graph can hold it. The
images are those of drawing step by step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import transforms as tf
from ..models import LoadedModel
from ..models.metadata import fixed_input_size
from ..params.base import Parameterization, parameterization
from ..params.images import bounded_pixels, from_image
from ..params.tensors import tensor
from ..randomness import UnitRandom
from ..transforms.crops import CropSchedule, crop_transform, crop_views
from ..transforms.ensemble import Ensemble
from ..transforms.steps import (
    PLAN_ELEMENTS,
    Parameters,
    StepTransform,
    plan,
    steady,
    step_parameters,
)
from .recipes import Recipe, image_size, model_size

# (shape (B, ...), randomness, device, init sd) -> the variables of a non-image input
Parameterize = Callable[[tuple[int, ...], UnitRandom, torch.device, float], Parameterization]


class Pipeline:
    """Parameterization -> image -> transforms -> resize -> normalize, for B units.

    ``start`` (B, C, h, w): images to start from (accentuation), at the recipe's image size.
    ``parameterize``: a non-image input kind's own domain (see ``featscope.inputs``).
    """

    def __init__(self, loaded: LoadedModel, recipe: Recipe, random: UnitRandom,
                 device: torch.device, *, start: torch.Tensor | None = None,
                 spectrum: torch.Tensor | None = None, parameterize: Parameterize | None = None,
                 max_norm: float | None = None):
        self.loaded, self.recipe, self.random = loaded, recipe, random
        self.normalization = loaded.normalization.to(device)
        self.is_image = loaded.is_image and recipe.param != "tensor" and parameterize is None
        self.crops: CropSchedule | None = None
        # Fraction of the search done: the crop schedule, the ensemble's colour noise and the
        # growing canvas follow it.
        self.progress = 0.0
        # The search's step, on the device: which of the planned draws the step reads.
        self.step_index = torch.zeros(1, dtype=torch.long, device=device)
        self.planned: Parameters | None = None  # every step's transform parameters (steps, B, ...)
        batch = len(random)
        if not self.is_image:
            shape = (batch, *loaded.input_shape)
            self.param = (parameterize(shape, random, device, recipe.init_sd) if parameterize
                          else tensor(shape, random=random, device=device, sd=recipe.init_sd,
                                      max_norm=max_norm))
            self.augment: StepTransform | tf.Transform = steady(tf.identity)
            self.clean = tf.identity
            self.views = 1
            self.planned = {}
            return
        channels, height, width = loaded.input_shape
        size = image_size(recipe, height, width)
        self.size = size
        self.param = self._image_param((batch, channels, *size), device, start, spectrum)
        to_model = model_size(recipe, (height, width), size, fixed_input_size(loaded.module))
        self.clean = tf.resize(to_model)
        side = round(min(size) * recipe.transform_strength)
        if recipe.crops:
            self.crops = CropSchedule(recipe.crops, recipe.crop_start, recipe.crop_end,
                                      recipe.crop_spread, recipe.crop_rotate, recipe.noise,
                                      recipe.thumbnail_views)
            self.augment = self._crop_views(recipe, side, to_model, channels)
        elif recipe.ensemble:
            ensemble = Ensemble(recipe.ensemble, recipe.jitter, recipe.color_shift,
                                recipe.color_noise, recipe.ensemble_original)
            norm = self.normalization
            self.augment = ensemble.transform(norm.mean, norm.std, to_model, channels)
        else:  # one resampling from the parameterized image to the model's input
            self.augment = {"lucid": tf.per_image(tf.lucid_transforms(), to_model),
                            "scaled": tf.random_affine(
                                side, to_model, scales=tf.scales_within(recipe.scale_jitter)),
                            "none": steady(self.clean)}[recipe.transforms]
        self.views = recipe.views
        self.planned = self._plan(size, device)

    def _image_param(self, shape: tuple[int, int, int, int], device: torch.device,
                     start: torch.Tensor | None, spectrum: torch.Tensor | None) -> Parameterization:
        r = self.recipe
        if start is not None:
            return from_image(start, random=self.random, device=device, sd=r.init_sd,
                              decorrelate=r.decorrelate)
        return parameterization(r.param)(shape, random=self.random, device=device, sd=r.init_sd,
                                         decorrelate=r.decorrelate, spectrum=spectrum,
                                         normalization=self.normalization)

    def _plan(self, size: tuple[int, int], device: torch.device) -> Parameters | None:
        """Every transform step's parameters on the device, or None when the transform
        cannot draw ahead (Lucid's chained transforms) or would draw too much."""
        steps = self.recipe.steps - self.recipe.polish_steps  # the polish draws nothing
        if not isinstance(self.augment, StepTransform) or \
                self.augment.elements(steps, len(self.random)) > PLAN_ELEMENTS:
            return None
        progress = [progress_at(step, self.recipe.steps) for step in range(steps)]
        return {k: v.to(device) for k, v in plan(self.augment, self.random, progress,
                                                 size).items()}

    @property
    def capturable(self) -> bool:
        """Whether a step's input is built by device work alone, from the planned draws, with
        the same shapes at every step (a CUDA graph can hold it; a growing canvas changes its
        side from stage to stage)."""
        return self.planned is not None and isinstance(self.augment, StepTransform) and \
            self.augment.capturable and self.recipe.canvas_start is None

    def _crop_views(self, recipe: Recipe, side: int, to_model: tuple[int, int],
                    channels: int) -> StepTransform | tf.Transform:
        if recipe.transforms == "none":
            return crop_transform(self.crops, to_model, channels)
        chain = tf.lucid_transforms(side if recipe.transforms == "scaled" else 224)

        def views(image: torch.Tensor, random: UnitRandom) -> torch.Tensor:
            # Lucid's chained transforms change an image's size by its own draws: each image
            # of the batch is transformed and cut into views on its own.
            rows = [random.row(i) for i in range(len(random))] if isinstance(random, UnitRandom) \
                else [random] * image.shape[0]
            return torch.cat([crop_views(chain(image[i:i + 1], row), self.crops, to_model,
                                         self.progress, row)
                              for i, row in enumerate(rows)])
        return views

    @property
    def params(self) -> list[torch.Tensor]:
        return self.param.params

    def at_step(self, step: int) -> None:
        """The search is at ``step`` of ``recipe.steps``: crop views follow their schedule, and
        the step's planned draws are read."""
        self.progress = progress_at(step, self.recipe.steps)
        self.step_index.fill_(step)

    def image(self) -> torch.Tensor:
        """The current input: (B, C, H, W) in [0, 1] for images, the raw input otherwise.

        With a growing canvas, the image is seen at the canvas's current side (resized down
        and back up): a search that starts coarse and adds finer detail stage by stage.
        """
        image = self.param()
        fraction = self.recipe.canvas(self.progress) if self.is_image else 1.0
        if fraction < 1.0:
            small = tuple(max(1, round(fraction * s)) for s in self.size)
            image = tf.resize_to(tf.resize_to(image, small), self.size, antialias=False)
        return image

    def to_pixels(self) -> None:
        """Search the current image from here on pixel by pixel (the faithful finish): any
        pixel can move, so the image can reach the unit's optimum, not only what the
        parameterization favours. The pixels are searched as they are, kept in [0, 1] by
        projection (``bounded_pixels``); a growing canvas is then at its full side (the image
        is taken as the canvas showed it). Inputs that are not images, and the Keras
        recipe's model-space pixels (not bounded), keep their variables."""
        if self.is_image and self.param.kind != "model-space pixels":
            with torch.no_grad():
                current = self.image().detach()  # as the canvas shows it now
            self.param = bounded_pixels(current, device=current.device)
        self.progress = 1.0

    def model_input(self, image: torch.Tensor, augment: bool) -> torch.Tensor:
        """(B, C, H, W) image -> model input: (B * views, ...) when augmented with crop views."""
        if not self.is_image:
            return image
        if not augment:
            return self.normalization(self.clean(image, self.random))
        if self.planned is not None:
            params = step_parameters(self.planned, self.step_index)
            return self.normalization(self.augment.apply(image, params))
        if isinstance(self.augment, StepTransform):
            return self.normalization(self.augment(image, self.random, self.progress))
        return self.normalization(self.augment(image, self.random))

    def display(self, image: torch.Tensor) -> torch.Tensor:
        """What is saved: the image in [0, 1] (the Keras display for its recipe), or the input."""
        if not self.is_image:
            return image
        if self.recipe.display == "keras":
            return keras_deprocess(self.normalization(image))
        return image.clamp(0, 1)

    def example(self) -> torch.Tensor:
        """One model input (1, ...) from the start, for the model's preparation (folding)."""
        with torch.no_grad():
            return self.model_input(self.image(), augment=False)[:1]


def progress_at(step: int, steps: int) -> float:
    """The fraction of a search of ``steps`` steps done at ``step`` (0 .. 1)."""
    return step / max(1, steps - 1)


def keras_deprocess(x: torch.Tensor, crop: int = 25) -> torch.Tensor:
    """The Keras example's display: standardize to std 0.15 around 0.5, crop 25 px, clip."""
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(1).reshape(-1, 1, 1, 1)
    std = flat.std(1).reshape(-1, 1, 1, 1)
    x = (x - mean) / (std + 1e-5) * 0.15 + 0.5
    if min(x.shape[-2:]) > 4 * crop:
        x = x[..., crop:-crop, crop:-crop]
    return x.clamp(0, 1)
