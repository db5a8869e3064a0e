"""Maximally activating inputs: gradient ascent on an objective over the model's input.

``render`` searches over a parameterized input with the shape of the model's input (an image,
a 1-D signal, a volume, a plain vector) so as to maximize an objective, one target per batch
element. The model is frozen (eval mode, no weight gradients) and hooked only where the
objectives read it; the forward pass stops at the deepest probed layer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from . import diversity as div
from . import parameterizations as params
from . import transforms as tf
from .crops import CropSchedule, crop_views
from .errors import FeatscopeError
from .fusion import batchnorms_folded
from .models import LoadedModel, Normalization, identity_normalization
from .objectives import BatchScorer, Objective
from .probing import MODEL_OUTPUT, Probe, frozen
from .search import GradientSearch
from .sheets import grid, png_bytes
from .transparency import GradientAccumulator
from .warmup import LeakyGradients

Precision = Literal["float32", "bfloat16", "float16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16")
ParamKind = str  # a name in IMAGE_PARAMETERIZATIONS, "keras" or "tensor"
# (shape (B, ...), generator, device, init sd) -> the variables of a non-image input
Parameterize = Callable[[tuple[int, ...], torch.Generator, torch.device, float],
                        params.Parameterization]


@dataclass(frozen=True)
class Recipe:
    """Everything that defines how a visualization is searched for (a preset, or overrides)."""

    name: str
    param: ParamKind = "fourier"
    steps: int = 256
    lr: float = 0.05
    optimizer: Literal["adam", "nadam", "plain"] = "adam"
    grad_norm: Literal["none", "l2", "rms"] = "none"
    size: int | None = None  # image side in px; None: the model's input size
    upsample_below: int | None = None  # resize the image to this size when smaller (Lucid)
    # "lucid": Lucid's pixel amounts; "scaled": the same in proportion to the image side.
    transforms: Literal["lucid", "scaled", "none"] = "scaled"
    decorrelate: bool = True
    init_sd: float = 0.01
    channel_border: int = 0  # px excluded at each side of a channel's map (Keras)
    display: Literal["image", "keras"] = "image"
    # MACO-style views: ``crops`` random crops of the image (the canvas) per image and step,
    # side fractions uniform in crop_start's range at the first step, crop_end's at the last.
    crops: int = 0
    crop_start: tuple[float, float] = (0.5, 1.0)
    crop_end: tuple[float, float] = (0.5, 1.0)
    crop_spread: float | None = None  # sd of crop centres (canvas sides); None: uniform
    crop_rotate: float = 0.0  # degrees, ± per crop
    noise: float = 0.0  # sd of Gaussian noise added to each view
    transparency: bool = False  # accumulate |d objective / d image| (MACO's alpha map)
    diversity: float = 0.0  # weight of the similarity penalty between same-target images
    closeness: float = 0.0  # weight of the mean squared distance to a start image
    warmup: int = 0  # first steps with leaky ReLU gradients (revives dead units)
    # Render at this fraction of the model's input side (not below 32 px), resized up to it:
    # no detail finer than the model needs to see the object, so it survives thumbnails.
    resolution: float | None = None
    transform_strength: float = 1.0  # multiplies the "scaled" transforms' pixel amounts


PRESETS: dict[str, Recipe] = {
    # The default for units other than classes: Lucid's Fourier parameterization and
    # transforms (scaled to the image side, applied as one resampling), one view per step at
    # the model's input size. The fastest route to a unit's activation (bench/speed.py).
    "featscope": Recipe("featscope", steps=256),
    # Class images that stay recognizable as thumbnails: searched at half the input side
    # (112 px for 224) and resized up, Lucid's transforms at that scale, two random crop views
    # (3/4 to all of the image, ±5°) per step — twice the model evaluations of one view, and
    # crops move a neuron's location, so it suits classes and pooled channels. See
    # docs/quality.md for how it was chosen against the Lucid, Keras and MACO recipes.
    "legible": Recipe("legible", steps=256, resolution=112 / 224, transform_strength=224 / 112,
                      crops=2, crop_start=(0.75, 1.0), crop_end=(0.75, 1.0), crop_rotate=5.0),
    # Lucid/Lucent render_vis defaults: 128 px (upsampled to 224), Adam 0.05, 512 steps.
    "lucid": Recipe("lucid", steps=512, size=128, upsample_below=224, transforms="lucid"),
    # The Keras example: model-space pixels, L2-normalized gradient steps of 10, 30 steps.
    "keras": Recipe("keras", param="keras", steps=30, lr=10.0, optimizer="plain",
                    grad_norm="l2", size=180, transforms="none", decorrelate=False,
                    channel_border=2, display="keras"),
    # MACO (Fel et al. 2023): natural magnitude, phase only, 32 crops of a 512 px canvas
    # shrinking from the whole canvas to a tenth of it, noise 0.08, NAdam lr 1.0.
    "maco": Recipe("maco", param="maco", steps=256, lr=1.0, optimizer="nadam", size=512,
                   transforms="none", crops=32, crop_start=(1.0, 1.0), crop_end=(0.1, 0.2),
                   crop_spread=0.15, noise=0.08, transparency=True),
}

OPTIMIZERS = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "plain": None}


# The default preset: chosen per objective (``preset_for``), one of these two.
AUTO = "auto"
UNIT_PRESET, CLASS_PRESET = "featscope", "legible"


def preset_for(objective: Objective, preset: str = AUTO) -> str:
    """The preset that renders ``objective``: ``preset`` itself, or for "auto" ``legible``
    when the objective reads only the model's output (a class: an object, which should stay
    recognizable as a thumbnail) and ``featscope`` otherwise (a unit keeps its finest detail
    and its place). See docs/quality.md for the measurements behind the choice."""
    if preset != AUTO:
        return preset
    return CLASS_PRESET if set(objective.layers) == {MODEL_OUTPUT} else UNIT_PRESET


def recipe(preset: str = AUTO, **overrides) -> Recipe:
    """A preset's recipe with some fields replaced (``None`` values are ignored); "auto"
    gives the recipe for units (``featscope``), ``preset_for`` the one for an objective."""
    preset = UNIT_PRESET if preset == AUTO else preset
    if preset not in PRESETS:
        raise FeatscopeError(f"unknown preset {preset!r}; valid: {AUTO}, {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(Recipe.__dataclass_fields__)
    if unknown:
        raise FeatscopeError(f"unknown recipe setting(s): {', '.join(sorted(unknown))}")
    return replace(PRESETS[preset], **given)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": CUDA if available, then Apple MPS, then the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise FeatscopeError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N, mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise FeatscopeError("device 'cuda' was asked for, but no CUDA GPU is available")
    return resolved


@dataclass
class RenderResult:
    targets: list[str]
    images: torch.Tensor  # (B, C, H, W) in [0, 1] for images; the raw input (B, ...) otherwise
    initial: torch.Tensor  # (B,) objective on the starting input, without random transforms
    final: torch.Tensor  # (B,) objective on the result, without random transforms
    history: torch.Tensor  # (steps, B) objective during the search (with random transforms)
    zero_gradient: list[bool]  # True where the input gradient was zero at every step
    seconds: float
    device: str
    recipe: Recipe
    settings: dict = field(default_factory=dict)
    transparency: torch.Tensor | None = None  # (B, H, W) accumulated |input gradient|
    never_activated: list[bool] = field(default_factory=list)  # objective never rose

    def _repr_png_(self) -> bytes | None:
        """Jupyter shows a result inline: its images as a grid labelled with the targets."""
        if self.images.dim() != 4:
            return None
        labels = [f"{t} {v:.3g}" for t, v in zip(self.targets, self.final.tolist())]
        return png_bytes(grid(self.images, labels))


def _as_loaded(model: nn.Module | LoadedModel, input_shape: Sequence[int] | None,
               normalization: Normalization | None) -> LoadedModel:
    if isinstance(model, LoadedModel):
        if input_shape is None and normalization is None:
            return model
        return replace(model, input_shape=tuple(input_shape or model.input_shape),
                       normalization=normalization or model.normalization)
    if input_shape is None:
        raise FeatscopeError("render needs input_shape=(C, H, W) (no batch dim) for a plain nn.Module")
    shape = tuple(int(s) for s in input_shape)
    channels = shape[0] if len(shape) == 3 else 1
    return LoadedModel(model, type(model).__name__, shape,
                       normalization or identity_normalization(channels))


def _model_size(recipe: Recipe, input_size: tuple[int, int],
                image_size: tuple[int, int]) -> tuple[int, int]:
    """What reaches the model: its input size, Lucid's upsampling size, or the image's own."""
    if recipe.size is None or recipe.crops:
        return input_size
    below = recipe.upsample_below
    if below and recipe.size < below:
        return below, below
    return tuple(image_size)


MIN_SIDE = 32  # a reduced resolution never goes below this (small-input models keep theirs)

# On a CPU the cost of a step per unit grows with the batch (the feature maps no longer fit
# the caches): for 224 px images batch 1 is the fastest (bench/speed.py), so a CPU batch holds
# about one 224 px image's worth of input elements. Accelerators want many units per batch.
CPU_BATCH_ELEMENTS = 3 * 224 * 224
ACCELERATOR_BATCH = 32


def default_batch_size(loaded: LoadedModel, device: torch.device, views: int = 1) -> int:
    """Units per batch when none is given, for inputs of ``loaded`` seen ``views`` times a step."""
    if device.type != "cpu":
        return ACCELERATOR_BATCH
    return max(1, CPU_BATCH_ELEMENTS // (math.prod(loaded.input_shape) * max(1, views)))


def _image_size(recipe: Recipe, height: int, width: int) -> tuple[int, int]:
    """The searched image's (H, W): the recipe's size, a fraction of the input's, or the input's."""
    if recipe.size:
        return recipe.size, recipe.size
    if recipe.resolution:
        if not 0 < recipe.resolution <= 1:
            raise FeatscopeError(f"resolution must be in (0, 1] (a fraction of the model's "
                                 f"input side); got {recipe.resolution}")
        return tuple(min(s, max(MIN_SIDE, round(recipe.resolution * s))) for s in (height, width))
    return height, width


class _Pipeline:
    """Parameterization -> image -> random transforms -> resize -> normalize -> model."""

    def __init__(self, loaded: LoadedModel, recipe: Recipe, batch: int, device: torch.device,
                 generator: torch.Generator, max_norm: float | None,
                 start: torch.Tensor | None = None, spectrum: torch.Tensor | None = None,
                 parameterize: Parameterize | None = None):
        self.loaded, self.recipe, self.generator = loaded, recipe, generator
        self.start, self.spectrum, self.crops = start, spectrum, None
        self.normalization = loaded.normalization.to(device)
        image = loaded.is_image and recipe.param != "tensor" and parameterize is None
        if image:
            channels, height, width = loaded.input_shape
            shape = (batch, channels, *_image_size(recipe, height, width))
            self.param = self._image_param(shape, device)
            model_size = _model_size(recipe, (height, width), shape[2:])
            self.fixed = tf.resize(model_size)
            side = round(min(shape[2:]) * recipe.transform_strength)
            if recipe.crops:
                self.crops = CropSchedule(recipe.crops, recipe.crop_start, recipe.crop_end,
                                          recipe.crop_spread, recipe.crop_rotate, recipe.noise)
                random = {"lucid": tf.lucid_transforms(), "none": tf.identity,
                          "scaled": tf.lucid_transforms(side)}[recipe.transforms]
                self.augment = self._with_crops(random, model_size)
            else:  # one resampling from the parameterized image to the model's input
                self.augment = {"lucid": tf.compose(tf.lucid_transforms(), self.fixed),
                                "scaled": tf.random_affine(side, model_size),
                                "none": self.fixed}[recipe.transforms]
        else:
            shape = (batch, *loaded.input_shape)
            if parameterize is not None:  # an input kind's own domain (see inputs.py)
                self.param = parameterize(shape, generator, device, recipe.init_sd)
            else:
                self.param = params.tensor(shape, generator=generator, device=device,
                                           sd=recipe.init_sd, max_norm=max_norm)
            self.augment = self.fixed = tf.identity
        self.image_mode = image
        self.views = recipe.crops if image and recipe.crops else 1
        self.progress = 0.0  # fraction of the search done: the crop schedule follows it

    def _with_crops(self, random: tf.Transform, model_size: tuple[int, int]) -> tf.Transform:
        def views(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return crop_views(random(image, generator), self.crops, model_size, self.progress,
                              generator)
        return views

    def _image_param(self, shape: tuple[int, int, int, int], device: torch.device):
        r = self.recipe
        if self.start is not None:
            return params.from_image(self.start, generator=self.generator, device=device,
                                     sd=r.init_sd, decorrelate=r.decorrelate)
        if r.param == "maco" and self.spectrum is not None:
            return params.maco(shape, generator=self.generator, device=device,
                               decorrelate=r.decorrelate, spectrum=self.spectrum)
        if r.param == "keras":
            return params.uniform_pixels(shape, generator=self.generator, device=device,
                                         low=-0.125, high=0.125)
        build = params.IMAGE_PARAMETERIZATIONS.get(r.param)
        if build is None:
            valid = ", ".join([*params.IMAGE_PARAMETERIZATIONS, "keras", "tensor"])
            raise FeatscopeError(f"unknown parameterization {r.param!r}; valid: {valid}")
        return build(shape, generator=self.generator, device=device, sd=r.init_sd,
                     decorrelate=r.decorrelate)

    def image(self) -> torch.Tensor:
        """The current input, (B, C, H, W) in [0, 1] for images."""
        value = self.param()
        if self.recipe.param == "keras":  # searched in model space; map back to image space
            value = self.normalization.inverse(value)
        return value

    def model_input(self, image: torch.Tensor, augment: bool) -> torch.Tensor:
        """(B, C, H, W) image -> model input: (B * views, ...) when augmented with crops."""
        if not self.image_mode:
            return image
        transform = self.augment if augment else self.fixed
        return self.normalization(transform(image, self.generator))

    def display(self, image: torch.Tensor) -> torch.Tensor:
        if not self.image_mode:
            return image
        if self.recipe.display == "keras":
            return keras_deprocess(self.normalization(image))
        return image.clamp(0, 1)


class _ChannelsLast:
    """Channels-last memory for a search's 4-D model inputs and weights, where it is faster:
    the CPU (about a quarter off a step of EfficientNet-Lite0, bench/speed.py) and CUDA under
    autocast. A model that fails with it (a ``.view()`` of a feature map) falls back."""

    def __init__(self, module: nn.Module, active: bool):
        self.module, self.active, self.applied = module, active, False

    def apply(self) -> None:
        if self.active:
            self.module.to(memory_format=torch.channels_last)
            self.applied = True

    def input(self, x: torch.Tensor) -> torch.Tensor:
        if self.active and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def fall_back(self) -> None:
        self.active = False
        self.restore()

    def restore(self) -> None:
        if self.applied:
            self.module.to(memory_format=torch.contiguous_format)
            self.applied = False


def keras_deprocess(x: torch.Tensor, crop: int = 25) -> torch.Tensor:
    """The Keras example's display: standardize to std 0.15 around 0.5, crop 25 px, clip."""
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(1).reshape(-1, 1, 1, 1)
    std = flat.std(1).reshape(-1, 1, 1, 1)
    x = (x - mean) / (std + 1e-5) * 0.15 + 0.5
    if min(x.shape[-2:]) > 4 * crop:
        x = x[..., crop:-crop, crop:-crop]
    return x.clamp(0, 1)


def render(model: nn.Module | LoadedModel, objectives: Objective | Sequence[Objective], *,
           preset: str = AUTO, steps: int | None = None, lr: float | None = None,
           param: ParamKind | None = None, size: int | None = None,
           transforms: str | None = None, seed: int = 0, device: str | torch.device | None = None,
           batch_size: int | None = None, input_shape: Sequence[int] | None = None,
           normalization: Normalization | None = None, max_norm: float | None = None,
           stop_early: bool = True, progress: bool = False,
           on_step: Callable[[int, torch.Tensor], None] | None = None,
           start: torch.Tensor | None = None, spectrum: torch.Tensor | None = None,
           diversity_layer: str | None = None, parameterize: Parameterize | None = None,
           precision: Precision = "float32", fold_batchnorm: bool = True,
           **settings) -> RenderResult:
    """Search for the input that maximizes each objective: one image per objective.

    ``preset`` names a recipe (``PRESETS``); the default, "auto", renders classes (objectives
    on the model's output) with ``legible`` and every other unit with ``featscope``.
    ``model`` is a ``LoadedModel`` (from ``load_model``) or any ``nn.Module`` with
    ``input_shape`` (C, H, W) or (..., ) given. Objectives are rendered in batches of
    ``batch_size`` (default: ``default_batch_size``, the fastest for the device; all of them
    together when diversity compares them). A given ``seed`` gives the same result on the CPU.
    ``settings`` override other ``Recipe`` fields (crops, noise, diversity, warmup, ...).
    ``start`` (1 or B, C, H, W) in [0, 1]: accentuation, the search starts from this image
    (kept close to it by ``closeness``). ``spectrum``: MACO's log-magnitude (3, S, S).
    ``diversity_layer``: where the diversity penalty compares images (default: each
    objective's own layer). Repeat an objective N times to get N diverse images of it.
    ``parameterize`` replaces the raw-tensor search space of non-image inputs (see
    ``featscope.inputs`` for signals, volumes, bounded vectors and token embeddings).
    ``precision="bfloat16"``/``"float16"`` runs the model under autocast, which is much faster
    on GPUs; the search itself stays in float32.
    ``fold_batchnorm``: batch norms that directly follow a convolution are folded into it for
    the search (same values, less work per step; see ``featscope.fusion``).
    """
    objective_list = [objectives] if isinstance(objectives, Objective) else list(objectives)
    if not objective_list:
        raise FeatscopeError("nothing to render: give at least one objective")
    loaded = _as_loaded(model, input_shape, normalization)
    target = resolve_device(device)
    if precision not in PRECISIONS:
        raise FeatscopeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if batch_size is not None and batch_size < 1:
        raise FeatscopeError(f"batch size must be at least 1 (got {batch_size})")
    extras = _Extras(spectrum, diversity_layer, parameterize, precision, fold_batchnorm)
    parts = []
    for name, first, group in _preset_runs(objective_list, preset):
        chosen = recipe(name, steps=steps, lr=lr, param=param, size=size, transforms=transforms,
                        **settings)
        if chosen.steps < 1:
            raise FeatscopeError(f"steps must be at least 1 (got {chosen.steps})")
        chunk = batch_size or (len(group) if chosen.diversity else
                               default_batch_size(loaded, target, chosen.crops))
        if chosen.diversity and chunk < len(group):
            raise FeatscopeError("diversity compares the images of one batch: do not split the "
                                 "batch (leave batch_size unset)")
        starts = _start_images(start, loaded, chosen, len(objective_list))
        parts += [
            _render_batch(loaded, group[i:i + chunk], chosen, seed + first + i, target,
                          max_norm, stop_early, progress, on_step,
                          None if starts is None else starts[first + i:first + i + chunk],
                          extras)
            for i in range(0, len(group), chunk)
        ]
    return parts[0] if len(parts) == 1 else concat_results(parts)


def _preset_runs(objectives: list[Objective],
                 preset: str) -> list[tuple[str, int, list[Objective]]]:
    """Consecutive objectives that share a preset: (preset, index of the first, objectives)."""
    runs: list[tuple[str, int, list[Objective]]] = []
    for i, objective in enumerate(objectives):
        name = preset_for(objective, preset)
        if runs and runs[-1][0] == name:
            runs[-1][2].append(objective)
        else:
            runs.append((name, i, [objective]))
    return runs


def concat_results(parts: list[RenderResult]) -> RenderResult:
    first = parts[0]
    return replace(
        first,
        targets=[t for p in parts for t in p.targets],
        images=torch.cat([p.images for p in parts]),
        initial=torch.cat([p.initial for p in parts]),
        final=torch.cat([p.final for p in parts]),
        history=torch.cat([p.history for p in parts], dim=1),
        zero_gradient=[z for p in parts for z in p.zero_gradient],
        seconds=sum(p.seconds for p in parts),
        transparency=None if first.transparency is None
        else torch.cat([p.transparency for p in parts]),
        never_activated=[n for p in parts for n in p.never_activated],
    )


@dataclass(frozen=True)
class _Extras:
    spectrum: torch.Tensor | None = None
    diversity_layer: str | None = None
    parameterize: Parameterize | None = None
    precision: Precision = "float32"
    fold_batchnorm: bool = True


def _start_images(start: torch.Tensor | None, loaded: LoadedModel, chosen: Recipe,
                  batch: int) -> torch.Tensor | None:
    """The accentuation start (1 or B, C, H, W), resized to the image size: (B, C, H, W)."""
    if start is None:
        return None
    if not loaded.is_image:
        raise FeatscopeError("a start image needs an image model (input (C, H, W), C 1 or 3)")
    channels, height, width = loaded.input_shape
    if start.dim() == 3:
        start = start[None]
    if start.dim() != 4 or start.shape[1] != channels or start.shape[0] not in (1, batch):
        raise FeatscopeError(f"the start image must be (1 or {batch}, {channels}, H, W) in "
                             f"[0, 1]; got {tuple(start.shape)}")
    size = _image_size(chosen, height, width)
    start = torch.nn.functional.interpolate(start.float(), size=size, mode="bilinear",
                                            antialias=True, align_corners=False).clamp(0, 1)
    return start.expand(batch, -1, -1, -1)


def _penalties(pipe: _Pipeline, chosen: Recipe, objectives: list[Objective], image: torch.Tensor,
               acts: dict[str, torch.Tensor], start: torch.Tensor | None,
               diversity_layer: str | None) -> torch.Tensor:
    """(B,) regularizers subtracted from the objective during the search."""
    total = torch.zeros(image.shape[0], device=image.device)
    if chosen.closeness and start is not None:
        distance = (image - start.to(image.device)).pow(2).flatten(1).mean(1)
        total = total + chosen.closeness * distance
    if chosen.diversity:
        layer = diversity_layer or sorted(objectives[0].layers)[0]
        feats = div.gram(acts[layer])
        feats = feats.reshape(image.shape[0], -1, feats.shape[-1]).mean(1)  # mean over views
        groups = div.groups_of([o.name for o in objectives])
        total = total + chosen.diversity * div.similarity(feats, groups)
    return total


def _check_dependency(objectives: Sequence[Objective], acts: dict[str, torch.Tensor]) -> None:
    independent = [
        objective.name for i, objective in enumerate(objectives)
        if not objective.score({k: v[i:i + 1] for k, v in acts.items()}).requires_grad
    ]
    if independent:
        raise FeatscopeError(
            f"target(s) {', '.join(independent)} do not depend on the input: there is no "
            "differentiable path from the input to them (a torch.no_grad block, an integer "
            "cast, argmax or a constant output), so their gradient is zero. Choose a layer on "
            "the input's differentiable path."
        )


def _render_batch(loaded: LoadedModel, objectives: list[Objective], chosen: Recipe, seed: int,
                  device: torch.device, max_norm: float | None, stop_early: bool,
                  progress: bool, on_step, start_image: torch.Tensor | None = None,
                  extras: _Extras = _Extras()) -> RenderResult:
    module = loaded.module
    generator = torch.Generator().manual_seed(seed)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    if chosen.diversity and extras.diversity_layer:
        layers = sorted({*layers, extras.diversity_layer})
    batch = len(objectives)
    gradients = GradientAccumulator()
    start = time.perf_counter()
    precision = extras.precision
    layout = _ChannelsLast(module, loaded.is_image and (
        device.type == "cpu" or (device.type == "cuda" and precision != "float32")))
    pipe = _Pipeline(loaded, chosen, batch, device, generator, max_norm, start_image,
                     extras.spectrum, extras.parameterize)

    def example() -> torch.Tensor:
        with torch.no_grad():
            return pipe.model_input(pipe.image(), augment=False)[:1]

    with _model_for_search(module, device, layers, layout, stop_early, chosen.warmup,
                           example if extras.fold_batchnorm else None) as (probe, leaky):
        scorer = BatchScorer(objectives)
        view_scorer = BatchScorer([o for o in objectives for _ in range(pipe.views)])
        pure: list[torch.Tensor] = []  # the objective alone, without penalties

        def activations(x: torch.Tensor) -> dict[str, torch.Tensor]:
            x = layout.input(x)
            if precision == "float32":
                return probe.run(x)
            with torch.autocast(device.type, dtype=getattr(torch, precision)):
                acts = probe.run(x)
            return {name: act.float() for name, act in acts.items()}

        def score(augment: bool) -> torch.Tensor:
            image = pipe.image()
            if augment and chosen.transparency and image.requires_grad:
                image.retain_grad()
                watched.append(image)
            x = pipe.model_input(image, augment)
            acts = activations(x)
            if not augment:
                return scorer(acts)
            values = view_scorer(acts).reshape(batch, pipe.views).mean(1)
            pure.append(values.detach())
            return values - _penalties(pipe, chosen, objectives, image, acts, start_image,
                                       extras.diversity_layer)

        try:
            acts = activations(pipe.model_input(pipe.image(), augment=False))
        except RuntimeError:
            if not layout.active:
                raise
            layout.fall_back()  # e.g. a .view() that needs contiguous feature maps
            acts = activations(pipe.model_input(pipe.image(), augment=False))
        _check_dependency(objectives, acts)
        initial = scorer(acts).detach()
        del acts  # its autograd graph holds every saved activation of that forward pass
        engine = GradientSearch(
            pipe.param.params, maximize=True, lr=chosen.lr, grad_norm=chosen.grad_norm,
            optimizer=OPTIMIZERS[chosen.optimizer])
        moved = torch.zeros(batch, dtype=torch.bool, device=device)
        for step in tqdm(range(chosen.steps), disable=not progress, desc="render",
                         unit="step", leave=False):
            if step == chosen.warmup:
                leaky.close()
            watched: list[torch.Tensor] = []
            pipe.progress = step / max(1, chosen.steps - 1)
            engine.step(lambda: score(True))
            if watched:
                gradients.add(watched[0].grad)
            grad = pipe.param.params[0].grad
            moved |= grad.reshape(grad.shape[0], -1).abs().amax(dim=1) > 0
            if on_step is not None:
                on_step(step, engine.last_values)
        with torch.no_grad():
            final = score(augment=False)
            images = pipe.display(pipe.image())
    history = torch.stack(pure)
    return RenderResult(
        targets=[o.name for o in objectives],
        images=images.detach().cpu(),
        initial=initial.cpu(),
        final=final.cpu(),
        history=history.cpu(),
        zero_gradient=(~moved).cpu().tolist(),
        seconds=time.perf_counter() - start,
        device=str(device),
        recipe=chosen,
        settings={**asdict(chosen), "seed": seed, "max_norm": max_norm},
        transparency=gradients.result(),
        never_activated=_never_activated(initial, history, final).cpu().tolist(),
    )


@contextmanager
def _model_for_search(module: nn.Module, device: torch.device, layers: list[str],
                      layout: _ChannelsLast, stop_early: bool, warmup: int,
                      example: Callable[[], torch.Tensor] | None
                      ) -> Iterator[tuple[Probe, LeakyGradients]]:
    """The model, frozen on ``device``, batch norms folded (when ``example`` gives an input),
    in ``layout``, probed at ``layers``, with leaky gradients while ``warmup`` lasts; all of
    it undone afterwards, the model back where it was."""
    home = next(module.parameters(), torch.empty(0)).device
    try:
        with ExitStack() as context:
            context.enter_context(frozen(module.to(device)))
            if example is not None:
                context.enter_context(batchnorms_folded(module, example(), layers))
            layout.apply()
            probe = context.enter_context(Probe(module, layers, stop_early=stop_early))
            leaky = context.enter_context(LeakyGradients(module, active=warmup > 0))
            yield probe, leaky
    finally:
        module.to(home)
        layout.restore()


def _never_activated(initial: torch.Tensor, history: torch.Tensor,
                     final: torch.Tensor) -> torch.Tensor:
    """(B,) True where the objective never rose above its starting value (a dead unit)."""
    best = torch.maximum(history.amax(0), final)
    return best <= initial + 1e-6 * (1 + initial.abs())
