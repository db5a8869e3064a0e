"""Maximally activating inputs: gradient ascent on an objective over the model's input.

``render`` searches over a parameterized input with the shape of the model's input (an image,
a 1-D signal, a volume, a plain vector) so as to maximize an objective, one target per batch
element. The model is frozen (eval mode, no weight gradients) and hooked only where the
objectives read it; the forward pass stops at the deepest probed layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from . import parameterizations as params
from . import transforms as tf
from .errors import FeatscopeError
from .models import LoadedModel, Normalization, identity_normalization
from .objectives import BatchScorer, Objective
from .probing import Probe, frozen
from .search import GradientSearch
from .sheets import grid, png_bytes

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
    optimizer: Literal["adam", "plain"] = "adam"
    grad_norm: Literal["none", "l2", "rms"] = "none"
    size: int | None = None  # image side in px; None: the model's input size
    upsample_below: int | None = None  # resize the image to this size when smaller (Lucid)
    # "lucid": Lucid's pixel amounts; "scaled": the same in proportion to the image side.
    transforms: Literal["lucid", "scaled", "none"] = "scaled"
    decorrelate: bool = True
    init_sd: float = 0.01
    channel_border: int = 0  # px excluded at each side of a channel's map (Keras)
    display: Literal["image", "keras"] = "image"


PRESETS: dict[str, Recipe] = {
    # Our default: Lucid's parameterization and robustness, at the model's input size.
    "featscope": Recipe("featscope", steps=256),
    # Lucid/Lucent render_vis defaults: 128 px (upsampled to 224), Adam 0.05, 512 steps.
    "lucid": Recipe("lucid", steps=512, size=128, upsample_below=224, transforms="lucid"),
    # The Keras example: model-space pixels, L2-normalized gradient steps of 10, 30 steps.
    "keras": Recipe("keras", param="keras", steps=30, lr=10.0, optimizer="plain",
                    grad_norm="l2", size=180, transforms="none", decorrelate=False,
                    channel_border=2, display="keras"),
}


def recipe(preset: str = "featscope", **overrides) -> Recipe:
    """A preset's recipe with some fields replaced (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise FeatscopeError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
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


class _Pipeline:
    """Parameterization -> image -> random transforms -> resize -> normalize -> model."""

    def __init__(self, loaded: LoadedModel, recipe: Recipe, batch: int, device: torch.device,
                 generator: torch.Generator, max_norm: float | None,
                 parameterize: Parameterize | None = None):
        self.loaded, self.recipe, self.generator = loaded, recipe, generator
        self.normalization = loaded.normalization.to(device)
        image = loaded.is_image and recipe.param != "tensor" and parameterize is None
        if image:
            channels, height, width = loaded.input_shape
            side = recipe.size
            shape = (batch, channels, side or height, side or width)
            self.param = self._image_param(shape, device)
            below = recipe.upsample_below
            if side is None:
                model_size = (height, width)
            elif below and side < below:
                model_size = (below, below)
            else:
                model_size = shape[2:]
            self.fixed = tf.resize(model_size)
            self.augment = {
                "lucid": tf.compose(tf.lucid_transforms(), self.fixed),
                "scaled": tf.random_affine(min(shape[2:]), model_size),
                "none": self.fixed,
            }[recipe.transforms]
        else:
            shape = (batch, *loaded.input_shape)
            if parameterize is not None:  # an input kind's own domain (see inputs.py)
                self.param = parameterize(shape, generator, device, recipe.init_sd)
            else:
                self.param = params.tensor(shape, generator=generator, device=device,
                                           sd=recipe.init_sd, max_norm=max_norm)
            self.augment = self.fixed = tf.identity
        self.image_mode = image

    def _image_param(self, shape: tuple[int, int, int, int], device: torch.device):
        r = self.recipe
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
           preset: str = "featscope", steps: int | None = None, lr: float | None = None,
           param: ParamKind | None = None, size: int | None = None,
           transforms: str | None = None, seed: int = 0, device: str | torch.device | None = None,
           batch_size: int | None = None, input_shape: Sequence[int] | None = None,
           normalization: Normalization | None = None, max_norm: float | None = None,
           stop_early: bool = True, progress: bool = False,
           on_step: Callable[[int, torch.Tensor], None] | None = None,
           parameterize: Parameterize | None = None,
           precision: Precision = "float32") -> RenderResult:
    """Search for the input that maximizes each objective: one image per objective.

    ``model`` is a ``LoadedModel`` (from ``load_model``) or any ``nn.Module`` with
    ``input_shape`` (C, H, W) or (..., ) given. Objectives are rendered together as one batch
    (or in chunks of ``batch_size``). A given ``seed`` gives the same result on the CPU.
    ``parameterize`` replaces the raw-tensor search space of non-image inputs (see
    ``featscope.inputs`` for signals, volumes, bounded vectors and token embeddings).
    ``precision="bfloat16"``/``"float16"`` runs the model under autocast (with channels-last
    memory on CUDA), which is much faster on GPUs; the search itself stays in float32.
    """
    objective_list = [objectives] if isinstance(objectives, Objective) else list(objectives)
    if not objective_list:
        raise FeatscopeError("nothing to render: give at least one objective")
    loaded = _as_loaded(model, input_shape, normalization)
    chosen = recipe(preset, steps=steps, lr=lr, param=param, size=size, transforms=transforms)
    if chosen.steps < 1:
        raise FeatscopeError(f"steps must be at least 1 (got {chosen.steps})")
    target = resolve_device(device)
    if precision not in PRECISIONS:
        raise FeatscopeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    chunk = batch_size or len(objective_list)
    parts = [
        _render_batch(loaded, objective_list[i:i + chunk], chosen, seed + i, target, max_norm,
                      stop_early, progress, on_step, parameterize, precision=precision)
        for i in range(0, len(objective_list), chunk)
    ]
    return parts[0] if len(parts) == 1 else _concat(parts)


def _concat(parts: list[RenderResult]) -> RenderResult:
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
    )


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
                  progress: bool, on_step, parameterize: Parameterize | None = None, *,
                  precision: Precision = "float32") -> RenderResult:
    module = loaded.module
    home = next(module.parameters(), torch.empty(0)).device
    generator = torch.Generator().manual_seed(seed)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    start = time.perf_counter()
    fast_memory = precision != "float32" and device.type == "cuda"
    try:
        if fast_memory:
            module.to(memory_format=torch.channels_last)
        with frozen(module.to(device)), Probe(module, layers, stop_early=stop_early) as probe:
            pipe = _Pipeline(loaded, chosen, len(objectives), device, generator, max_norm,
                             parameterize)
            scorer = BatchScorer(objectives)

            def activations(x: torch.Tensor) -> dict[str, torch.Tensor]:
                if precision == "float32":
                    return probe.run(x)
                if fast_memory and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=getattr(torch, precision)):
                    acts = probe.run(x)
                return {name: act.float() for name, act in acts.items()}

            def score(augment: bool) -> torch.Tensor:
                return scorer(activations(pipe.model_input(pipe.image(), augment)))

            acts = activations(pipe.model_input(pipe.image(), augment=False))
            _check_dependency(objectives, acts)
            initial = scorer(acts).detach()
            engine = GradientSearch(
                pipe.param.params, maximize=True, lr=chosen.lr, grad_norm=chosen.grad_norm,
                optimizer=torch.optim.Adam if chosen.optimizer == "adam" else None)
            history, moved = [], torch.zeros(len(objectives), dtype=torch.bool, device=device)
            for step in tqdm(range(chosen.steps), disable=not progress, desc="render",
                             unit="step", leave=False):
                engine.step(lambda: score(augment=True))
                history.append(engine.last_values)
                grad = pipe.param.params[0].grad
                moved |= grad.reshape(grad.shape[0], -1).abs().amax(dim=1) > 0
                if on_step is not None:
                    on_step(step, engine.last_values)
            with torch.no_grad():
                final = score(augment=False)
                images = pipe.display(pipe.image())
    finally:
        module.to(home)
        if fast_memory:
            module.to(memory_format=torch.contiguous_format)
    return RenderResult(
        targets=[o.name for o in objectives],
        images=images.detach().cpu(),
        initial=initial.cpu(),
        final=final.cpu(),
        history=torch.stack(history).cpu(),
        zero_gradient=(~moved).cpu().tolist(),
        seconds=time.perf_counter() - start,
        device=str(device),
        recipe=chosen,
        settings={**asdict(chosen), "seed": seed, "max_norm": max_norm},
    )
