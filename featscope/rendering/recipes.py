"""Recipes and presets: everything that defines how a visualization is searched for.

A ``Recipe`` holds the settings of one search (parameterization, steps, optimizer,
transforms, crop views, penalties, resolution). Presets are named recipes in a registry
(``PRESETS``; add one with ``register_preset``). The default, ``auto``, picks a preset per
objective and model in one place, ``preset_for``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import torch
from torch import nn

from ..engine.probing import MODEL_OUTPUT
from ..errors import FeatscopeError
from ..objectives.base import IMAGE, Objective
from ..params import PARAMETERIZATIONS  # the package registers the image parameterizations

OPTIMIZERS = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "plain": None}
TRANSFORMS = ("lucid", "scaled", "none")
GRAD_NORMS = ("none", "l2", "rms")
LR_SCHEDULES = ("constant", "cosine")
MIN_SIDE = 32  # a reduced resolution never goes below this (small-input models keep theirs)
MIN_SIZE = 8  # the smallest image side a recipe may ask for


@dataclass(frozen=True)
class Recipe:
    """Everything that defines how a visualization is searched for (a preset, or overrides)."""

    name: str
    param: str = "fourier"  # a name in params.PARAMETERIZATIONS, or "tensor" (raw inputs)
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
    # Weight of DeepInversion's batch-norm statistics prior (models with batch norm only).
    bn_prior: float = 0.0
    # Each crop view is seen as a thumbnail: shrunk to a side fraction drawn from this range,
    # then enlarged back (only what survives a thumbnail counts); None: views at full size.
    thumbnail_views: tuple[float, float] | None = None
    warmup: int = 0  # first steps with leaky ReLU gradients (revives dead units)
    # Render at this fraction of the model's input side (not below 32 px), resized up to it:
    # no detail finer than the model needs to see the object, so it survives thumbnails.
    resolution: float | None = None
    transform_strength: float = 1.0  # multiplies the "scaled" transforms' pixel amounts
    scale_jitter: float = 0.1  # the "scaled" transforms draw scales in 1 ± this (Lucid: 0.1)
    # A faithful finish: this fraction of the steps, at the end, searches the image itself
    # (no random transforms or crop views), so it reaches the unit's optimum closely while
    # keeping the structure found under transforms.
    polish: float = 0.0
    # The polish's learning rate, in pixel values (the polish searches the pixels in [0, 1]
    # themselves; None: lr).
    polish_lr: float | None = None
    # Plug-In Inversion's ensemble: ``ensemble`` augmented copies of each image per step,
    # each rolled by up to ``jitter`` of the side, colour-shifted (ColorShift range
    # ``color_shift``) and offset by Gaussian colour noise of sd ``color_noise`` that decays
    # to 0 (both in the model's input units), the first one left as it is with
    # ``ensemble_original``; see ``transforms.ensemble``.
    ensemble: int = 0
    ensemble_original: bool = False
    jitter: float = 0.0
    color_shift: float = 0.0
    color_noise: float = 0.0
    # A growing canvas: the image starts at this fraction of its side and grows by
    # ``canvas_growth`` per stage (stages of equal length), each stage from the previous
    # image upsampled. None: the full side throughout.
    canvas_start: float | None = None
    canvas_growth: float = 0.125
    tv: float = 0.0  # weight of the total variation penalty
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's and NAdam's
    lr_schedule: Literal["constant", "cosine"] = "constant"

    @property
    def polish_steps(self) -> int:
        return round(self.polish * self.steps)

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise FeatscopeError(problem)

    @property
    def views(self) -> int:
        """Model evaluations per image and step."""
        return max(1, self.crops, self.ensemble)

    def canvas(self, progress: float) -> float:
        """The side of the growing canvas, as a fraction of the image's, at ``progress`` in
        [0, 1] of the search (1 without a growing canvas)."""
        if self.canvas_start is None:
            return 1.0
        stages = 1 + math.ceil((1 - self.canvas_start) / self.canvas_growth - 1e-9)
        stage = min(stages - 1, int(progress * stages))
        return min(1.0, self.canvas_start + stage * self.canvas_growth)


def _problems(r: Recipe) -> list[str]:
    """What is wrong with a recipe's values, each as one line saying what is valid."""
    checks = [
        (r.steps >= 1, f"steps must be at least 1 (got {r.steps})"),
        (math.isfinite(r.lr) and r.lr > 0, f"lr (the learning rate) must be a positive number "
                                           f"(got {r.lr:g})"),
        (r.size is None or r.size >= MIN_SIZE,
         f"size must be at least {MIN_SIZE} px (got {r.size})"),
        (r.upsample_below is None or r.upsample_below >= MIN_SIZE,
         f"upsample_below must be at least {MIN_SIZE} px (got {r.upsample_below})"),
        (r.param in PARAMETERIZATIONS or r.param == "tensor",
         f"unknown parameterization {r.param!r}; valid: {', '.join(PARAMETERIZATIONS)}"),
        (r.optimizer in OPTIMIZERS, f"unknown optimizer {r.optimizer!r}; valid: "
                                    f"{', '.join(OPTIMIZERS)}"),
        (r.grad_norm in GRAD_NORMS, f"unknown grad_norm {r.grad_norm!r}; valid: "
                                    f"{', '.join(GRAD_NORMS)}"),
        (r.transforms in TRANSFORMS, f"unknown transforms {r.transforms!r}; valid: "
                                     f"{', '.join(TRANSFORMS)}"),
        (r.init_sd > 0, f"init_sd must be positive (got {r.init_sd:g})"),
        (r.channel_border >= 0, f"channel_border must be 0 or more px (got {r.channel_border})"),
        (r.crops >= 0, f"crops must be 0 (no crop views) or more (got {r.crops})"),
        (r.noise >= 0, f"noise must be 0 or more (got {r.noise:g})"),
        (r.diversity >= 0, f"diversity must be 0 or more (got {r.diversity:g})"),
        (r.closeness >= 0, f"closeness must be 0 or more (got {r.closeness:g})"),
        (r.bn_prior >= 0, f"bn_prior must be 0 or more (got {r.bn_prior:g})"),
        (r.thumbnail_views is None or 0 < r.thumbnail_views[0] <= r.thumbnail_views[1] <= 1,
         f"thumbnail_views must be a range 0 < low <= high <= 1 of side fractions (got "
         f"{r.thumbnail_views})"),
        (r.warmup >= 0, f"warmup must be 0 or more steps (got {r.warmup})"),
        (r.resolution is None or 0 < r.resolution <= 1,
         f"resolution must be in (0, 1] (a fraction of the model's input side); got "
         f"{r.resolution}"),
        (r.transform_strength > 0, f"transform_strength must be positive (got "
                                   f"{r.transform_strength:g})"),
        (0 <= r.scale_jitter < 1, f"scale_jitter must be in [0, 1) (scales 1 ± it); got "
                                  f"{r.scale_jitter:g}"),
        (0 <= r.polish < 1, f"polish must be in [0, 1) (a fraction of the steps); got "
                            f"{r.polish:g}"),
        (r.ensemble >= 0, f"ensemble must be 0 (no copies) or more (got {r.ensemble})"),
        (not (r.ensemble and r.crops), "a recipe has crop views or an ensemble of copies, not "
                                       "both"),
        (0 <= r.jitter < 1, f"jitter must be in [0, 1) (a fraction of the side); got "
                            f"{r.jitter}"),
        (r.color_shift >= 0 and r.color_noise >= 0, "color_shift and color_noise must be 0 or "
                                                    "more"),
        (r.canvas_start is None or 0 < r.canvas_start <= 1,
         f"canvas_start must be in (0, 1] (a fraction of the side); got {r.canvas_start}"),
        (r.canvas_growth > 0, f"canvas_growth must be positive (got {r.canvas_growth:g})"),
        (r.tv >= 0, f"tv must be 0 or more (got {r.tv:g})"),
        (all(0 <= b < 1 for b in r.betas) and len(r.betas) == 2,
         f"betas must be two numbers in [0, 1); got {r.betas}"),
        (r.lr_schedule in LR_SCHEDULES, f"unknown lr_schedule {r.lr_schedule!r}; valid: "
                                        f"{', '.join(LR_SCHEDULES)}"),
    ]
    return [message for ok, message in checks if not ok]


PRESETS: dict[str, Recipe] = {}


def register_preset(recipe: Recipe) -> Recipe:
    """Make ``recipe`` available as ``--preset NAME`` (its ``name``)."""
    PRESETS[recipe.name] = recipe
    return recipe


# The default for units other than classes: Lucid's Fourier parameterization and transforms
# (scaled to the image side, seen through a window of the input size in one resampling, no
# scale draws), one view per step at the model's input size, and a faithful finish: the last
# 30 % of the steps search the pixels themselves, in [0, 1] without a sigmoid (projected
# Adam, lr 0.02 in pixel values), without transforms, which takes a unit nearer its optimum.
# The finish's length was chosen on 6 Gabor units of known optimum other than the tests'
# (6 seeds each), against the best sinusoidal grating. Its pixels and rate were chosen on the
# same units and on 18 units of Lite0's _blocks.2/8/14, as the highest Gabor median that
# lowered no layer's median activation: 0.92 of the true optimum in [0, 1] (a two-level
# grating, 1.3x the sinusoid) against 0.90 for the earlier finish through the sigmoid, Lite0's
# units +4.7 %, +0.8 %, +1.1 % (lr 0.05 lost 1.4 % at _blocks.14). Held out (the tests' 4
# Gabor units, seeds 10-14; 18 units of _blocks.5/11/15): 0.88 against 0.86, Lite0's +0.6 %,
# +0.4 %, +0.3 %. Normalized gradient ascent comes nearer on gratings (0.96 median on the
# tuning units) but lowers Lite0 units' activation; without the window gratings came out too
# coarse. docs/quality.md has the measurements.
# The fastest route to a unit's activation (bench/speed.py).
register_preset(Recipe("featscope", steps=256, polish=0.3, polish_lr=0.02, scale_jitter=0.0))
# Class images that stay recognizable as thumbnails: searched at half the input side (112 px
# for 224) and resized up, Lucid's transforms at that scale, two random crop views (3/4 to
# all of the image, ±5°) per step, each seen as a thumbnail of 1/5 to all of the model's
# input side (shrunk, then enlarged back: only what survives a thumbnail counts). Twice the
# model evaluations of one view, and crops move a neuron's location, so it suits classes and
# pooled channels. Chosen on a tuning split of 50 classes by a rule fixed beforehand; on 100
# held-out classes judged by the other model (Lite0 -> Lite1, 256 steps, an H100) top-1 is
# 93 % at full size, 89 % at 64 px and 81 % at 48 px, where the same recipe without thumbnail
# views reached 98/69/35 % and Lucid's defaults 95/64/24 % (docs/quality.md). 512 steps: the
# same rule, applied to the tuning split judged by a third model (Lite2), picked the recipe at
# 512 steps (98/98/96 %) over 256 (94/98/92 %) and every other candidate; twice the time.
# Held-out at 512 steps (CPU): 96/91/80 % Lite0 -> Lite1, 91/91/80 % Lite1 -> Lite0.
register_preset(Recipe("legible", steps=512, resolution=112 / 224, transform_strength=224 / 112,
                       crops=2, crop_start=(0.75, 1.0), crop_end=(0.75, 1.0), crop_rotate=5.0,
                       thumbnail_views=(0.2, 1.0)))
# Lucid/Lucent render_vis defaults: 128 px (upsampled to 224), Adam 0.05, 512 steps.
register_preset(Recipe("lucid", steps=512, size=128, upsample_below=224, transforms="lucid"))
# The Keras example: model-space pixels, L2-normalized gradient steps of 10, 30 steps.
register_preset(Recipe("keras", param="keras", steps=30, lr=10.0, optimizer="plain",
                       grad_norm="l2", size=180, transforms="none", decorrelate=False,
                       channel_border=2, display="keras"))
# MACO (Fel et al. 2023): natural magnitude, phase only, 32 crops of a 512 px canvas
# shrinking from the whole canvas to a tenth of it, noise 0.08, NAdam lr 1.0.
register_preset(Recipe("maco", param="maco", steps=256, lr=1.0, optimizer="nadam", size=512,
                       transforms="none", crops=32, crop_start=(1.0, 1.0), crop_end=(0.1, 0.2),
                       crop_spread=0.15, noise=0.08, transparency=True))

# Plug-In Inversion (Ghiasi et al. 2022) for models without batch norm (ViTs, MLP-Mixers):
# no image prior but the search's own augmentations — 8 copies of the image per step, each
# rolled by up to 32 px of 224 and colour-shifted, plus a decaying colour offset — on pixels
# (no Fourier basis, no colour decorrelation), a canvas growing from a quarter of the side
# by eighths, Adam with betas (0.5, 0.99) and a cosine schedule, a little total variation.
# One change to the published recipe: the first of the 8 copies is the image itself. On the
# tiny ViT of bench/shapes.py it raises units' activation (median 0.49 against 0.42, 256
# steps) for some robustness (0.74 against 0.88), and a ViT with random weights, which no
# shift leaves alone, still rises (bench/quality.py --transformer, docs/quality-transformer.md).
register_preset(Recipe("pii", param="pixel", decorrelate=False, steps=256, lr=0.1,
                       betas=(0.5, 0.99), lr_schedule="cosine", transforms="none", ensemble=8,
                       ensemble_original=True, jitter=32 / 224, color_shift=1.0,
                       color_noise=0.5, canvas_start=0.25, canvas_growth=0.125, tv=0.0005))

# The default preset: chosen per objective (``preset_for``), one of these.
AUTO = "auto"
UNIT_PRESET, CLASS_PRESET, TRANSFORMER_PRESET = "featscope", "legible", "pii"


@dataclass(frozen=True)
class Architecture:
    """What the auto choice of a preset knows about a model: whether it has batch norms,
    whether it normalizes with layer norms (transformers, MLP-Mixers, ConvNeXt), and whether
    its input is an image."""

    batchnorm: bool = True
    layernorm: bool = False
    image: bool = True

    @property
    def transformer(self) -> bool:
        """An image model normalized by layer norms alone, as Plug-In Inversion is made for."""
        return self.image and self.layernorm and not self.batchnorm


def architecture_of(module: nn.Module, image: bool = True) -> Architecture:
    """``module``'s ``Architecture`` (``image``: whether its input is an image)."""
    modules = list(module.modules())
    return Architecture(
        batchnorm=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules),
        layernorm=any(isinstance(m, nn.LayerNorm)
                      or type(m).__name__.lower().startswith(("layernorm", "rmsnorm"))
                      for m in modules),
        image=image)


def preset_for(objective: Objective, preset: str = AUTO,
               architecture: Architecture = Architecture()) -> str:
    """The preset that renders ``objective``: ``preset`` itself, or for "auto":

    - ``pii`` on a transformer (``Architecture.transformer``: an image model normalized by
      layer norms, without batch norm): on a tiny ViT its classes are recognized by another
      model more often (3 of 8 against 1), and its units hold up better under small
      transforms than with ``featscope`` (robustness 0.74 against 0.25), though at lower
      activations (docs/quality-transformer.md);
    - ``legible`` when the objective reads only the model's output (a class: an object,
      which should stay recognizable as a thumbnail);
    - ``featscope`` otherwise (a unit keeps its finest detail and its place).

    See docs/quality.md and docs/quality-transformer.md for the measurements behind the
    choice."""
    if preset != AUTO:
        return preset
    if architecture.transformer:
        return TRANSFORMER_PRESET
    return CLASS_PRESET if set(objective.layers) - {IMAGE} == {MODEL_OUTPUT} else UNIT_PRESET


def check_preset(preset: str) -> None:
    if preset != AUTO and preset not in PRESETS:
        raise FeatscopeError(f"unknown preset {preset!r}; valid: {AUTO}, {', '.join(PRESETS)}")


def recipe(preset: str = AUTO, **overrides) -> Recipe:
    """A preset's recipe with some fields replaced (``None`` values are ignored); "auto"
    gives the recipe for units (``featscope``), ``preset_for`` the one for an objective."""
    check_preset(preset)
    preset = UNIT_PRESET if preset == AUTO else preset
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - {f.name for f in fields(Recipe)}
    if unknown:
        raise FeatscopeError(f"unknown recipe setting(s): {', '.join(sorted(unknown))}")
    return replace(PRESETS[preset], **given)


def recipes_of(preset: str, architecture: Architecture = Architecture(),
               **overrides) -> dict[str, Recipe]:
    """Every recipe a run with ``preset`` may use on a model of ``architecture``, by preset
    name ("auto" uses two on most models, one on transformers)."""
    if preset != AUTO:
        names = (preset,)
    else:
        names = (TRANSFORMER_PRESET,) if architecture.transformer else (UNIT_PRESET, CLASS_PRESET)
    return {name: recipe(name, **overrides) for name in names}


def image_size(r: Recipe, height: int, width: int) -> tuple[int, int]:
    """The searched image's (H, W): the recipe's size, a fraction of the input's, or the input's."""
    if r.size:
        return r.size, r.size
    if r.resolution:
        return tuple(min(s, max(MIN_SIDE, round(r.resolution * s))) for s in (height, width))
    return height, width


def model_size(r: Recipe, input_size: tuple[int, int], image: tuple[int, int],
               fixed: tuple[int, int] | None = None) -> tuple[int, int]:
    """What reaches the model: its input size, Lucid's upsampling size, or the image's own.
    ``fixed``: the only (H, W) the model takes (a ViT's patch grid and position embeddings
    fix it); a recipe that would give it another size is an error that says what would do."""
    if r.size is None or r.crops:
        size = tuple(input_size)
    elif r.upsample_below and r.size < r.upsample_below:
        size = (r.upsample_below, r.upsample_below)
    else:
        size = tuple(image)
    if fixed is None or size == tuple(fixed):
        return size
    h, w = fixed
    if r.size is None or r.crops:
        given, fix = (f"the input shape {input_size[0]}×{input_size[1]}",
                      f"give an --input-shape ending in x{h}x{w}, or leave it out")
    else:
        preset_size = PRESETS[r.name].size if r.name in PRESETS else None
        fits = []
        if h == w and not (r.upsample_below and h < r.upsample_below):
            fits.append(f"give --size {h}")
        if preset_size is None and tuple(input_size) == tuple(fixed):
            fits.append("leave --size out")
        given = f"the {r.name} preset's size {r.size}" if r.size == preset_size else \
            f"size {r.size}"
        fix = " or ".join(fits) or "choose another preset"
    raise FeatscopeError(f"this model takes only {h}×{w} inputs (its patch grid and position "
                         f"embeddings fix them), but {given} would give it {size[0]}×{size[1]}"
                         f": {fix}")
