"""The path from the searched variables to the model's input, for one batch.

parameterization -> image (B, C, H, W) in [0, 1] (seen through a growing canvas, when the
recipe has one) -> random transforms, crop views or an ensemble of augmented copies (each
image with its own unit's draws) -> resize to the model's input -> normalization -> model.
Inputs that are not images (signals, volumes, vectors, tokens, raw tensors) go straight from
their kind's parameterization to the model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import transforms as tf
from ..models import LoadedModel
from ..params.base import Parameterization, parameterization
from ..params.images import from_image
from ..params.tensors import tensor
from ..randomness import UnitRandom
from ..transforms.crops import CropSchedule, crop_views
from ..transforms.ensemble import Ensemble
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
        # fraction of the search done: the crop schedule, the ensemble's colour noise and the
        # growing canvas follow it
        self.progress = 0.0
        batch = len(random)
        if not self.is_image:
            shape = (batch, *loaded.input_shape)
            self.param = (parameterize(shape, random, device, recipe.init_sd) if parameterize
                          else tensor(shape, random=random, device=device, sd=recipe.init_sd,
                                      max_norm=max_norm))
            self.augment = self.clean = tf.identity
            self.views = 1
            return
        channels, height, width = loaded.input_shape
        size = image_size(recipe, height, width)
        self.size = size
        self.param = self._image_param((batch, channels, *size), device, start, spectrum)
        to_model = model_size(recipe, (height, width), size)
        self.clean = tf.resize(to_model)
        side = round(min(size) * recipe.transform_strength)
        if recipe.crops:
            self.crops = CropSchedule(recipe.crops, recipe.crop_start, recipe.crop_end,
                                      recipe.crop_spread, recipe.crop_rotate, recipe.noise)
            self.augment = self._crop_views(recipe, side, to_model)
        elif recipe.ensemble:
            ensemble = Ensemble(recipe.ensemble, recipe.jitter, recipe.color_shift,
                                recipe.color_noise, recipe.ensemble_original)
            norm = self.normalization
            self.augment = lambda image, random: ensemble.views(
                image, self.progress, random, norm.mean, norm.std, to_model)
        else:  # one resampling from the parameterized image to the model's input
            self.augment = {"lucid": tf.per_image(tf.lucid_transforms(), to_model),
                            "scaled": tf.random_affine(side, to_model),
                            "none": self.clean}[recipe.transforms]
        self.views = recipe.views

    def _image_param(self, shape: tuple[int, int, int, int], device: torch.device,
                     start: torch.Tensor | None, spectrum: torch.Tensor | None) -> Parameterization:
        r = self.recipe
        if start is not None:
            return from_image(start, random=self.random, device=device, sd=r.init_sd,
                              decorrelate=r.decorrelate)
        return parameterization(r.param)(shape, random=self.random, device=device, sd=r.init_sd,
                                         decorrelate=r.decorrelate, spectrum=spectrum,
                                         normalization=self.normalization)

    def _crop_views(self, recipe: Recipe, side: int, to_model: tuple[int, int]) -> tf.Transform:
        if recipe.transforms == "none":
            return lambda image, random: crop_views(image, self.crops, to_model, self.progress,
                                                    random)
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
        """The search is at ``step`` of ``recipe.steps``: crop views follow their schedule."""
        self.progress = step / max(1, self.recipe.steps - 1)

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

    def model_input(self, image: torch.Tensor, augment: bool) -> torch.Tensor:
        """(B, C, H, W) image -> model input: (B * views, ...) when augmented with crop views."""
        if not self.is_image:
            return image
        transform = self.augment if augment else self.clean
        return self.normalization(transform(image, self.random))

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


def keras_deprocess(x: torch.Tensor, crop: int = 25) -> torch.Tensor:
    """The Keras example's display: standardize to std 0.15 around 0.5, crop 25 px, clip."""
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(1).reshape(-1, 1, 1, 1)
    std = flat.std(1).reshape(-1, 1, 1, 1)
    x = (x - mean) / (std + 1e-5) * 0.15 + 0.5
    if min(x.shape[-2:]) > 4 * crop:
        x = x[..., crop:-crop, crop:-crop]
    return x.clamp(0, 1)
