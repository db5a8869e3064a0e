"""Every command-line option, declared once, in groups by what it configures.

A command names the groups it takes as parameters typed with the group's dataclass; the
``command`` decorator gives typer the group's options (one declaration each, in ``OPTIONS``)
and hands the command the filled-in groups::

    @command("sheet")
    def sheet(layer: LayerArgument, model: ModelOptions, rendering: RenderOptions, ...): ...

So every command that renders accepts the same model and rendering options, with the same
names, defaults and help.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..atlas.cluster import CLUSTER_HELP, CPU_WORKERS, check_cluster
from ..engine.layout import ORDERS
from ..engine.model import AUTO_PRECISION, PRECISIONS
from ..errors import FeatscopeError
from ..inputs.base import KINDS
from ..models import DEFAULT_MODEL, MODEL_SPEC_HELP
from ..objectives.features import POOLS
from ..objectives.penalties import DEFAULT_CLOSENESS, DEFAULT_DIVERSITY
from ..params.base import PARAMETERIZATIONS
from ..rendering.batch import GRAPHS_DEFAULT
from ..rendering.plan import check_batch_size
from ..rendering.recipes import (
    AUTO,
    CLASS_PRESET,
    PRESETS,
    TRANSFORMER_PRESET,
    UNIT_PRESET,
    check_preset,
)
from .app import app


@dataclass
class ModelOptions:
    """Which model, and how to load and adapt it."""

    model: str = DEFAULT_MODEL
    weights: Path | None = None
    trust_pickle: bool = False
    input_shape: list[str] | None = None
    output: str | None = None
    search_input: int = 0
    fixed_inputs: Path | None = None
    normalize: str | None = None
    random_weights: bool = False


@dataclass
class InputOptions:
    """Inputs that are not images: their kind and domain."""

    embedding: str | None = None
    seq_len: int | None = None
    input_kind: str | None = None
    sample_rate: int | None = None
    bounds: Path | None = None
    vocab: Path | None = None
    max_norm: float | None = None


@dataclass
class RenderOptions:
    """How units are searched for: the recipe, its overrides, and where it runs."""

    preset: str = AUTO
    steps: int | None = None
    size: int | None = None
    lr: float | None = None
    param: str | None = None
    pool: str = "mean"
    seed: int = 0
    device: str = "auto"
    batch_size: int | None = None
    precision: str = AUTO_PRECISION
    graphs: bool = GRAPHS_DEFAULT
    warmup: int | None = None
    crops: int | None = None
    polish: float | None = None
    bn_prior: float | None = None
    spectrum_from: Path | None = None
    layout: str | None = None
    prefix_tokens: int | None = None

    def check(self) -> None:
        """Reject bad values before the model loads: a clear error, early."""
        check_preset(self.preset)
        check_batch_size(self.batch_size)
        if self.pool not in POOLS:
            raise FeatscopeError(f"unknown --pool {self.pool!r}; valid: {', '.join(POOLS)}")
        if self.param is not None and self.param not in PARAMETERIZATIONS:
            raise FeatscopeError(f"unknown --param {self.param!r}; valid: "
                                 f"{', '.join(PARAMETERIZATIONS)}")
        if self.precision not in (AUTO_PRECISION, *PRECISIONS):
            raise FeatscopeError(f"unknown --precision {self.precision!r}; valid: "
                                 f"{', '.join((AUTO_PRECISION, *PRECISIONS))}")
        if self.layout is not None and self.layout.upper() not in ORDERS:
            raise FeatscopeError(f"unknown --layout {self.layout!r}; valid: {', '.join(ORDERS)}")
        if self.prefix_tokens is not None and self.prefix_tokens < 0:
            raise FeatscopeError(f"--prefix-tokens must be 0 or more (got {self.prefix_tokens})")

    def overrides(self) -> dict:
        """The recipe fields these options set (None: the preset's)."""
        return {"steps": self.steps, "size": self.size, "lr": self.lr, "param": self.param,
                "warmup": self.warmup, "crops": self.crops, "polish": self.polish,
                "bn_prior": self.bn_prior}


@dataclass
class AccentOptions:
    """Starting from an image, and diverse copies of each target."""

    from_image: Path | None = None
    closeness: float | None = None
    copies: int = 1
    diversity: float | None = None

    def check(self) -> None:
        if self.copies < 1:
            raise FeatscopeError(f"--copies must be at least 1 (got {self.copies})")

    def overrides(self) -> dict:
        return {"closeness": self.closeness if self.closeness is not None or self.from_image is None
                else DEFAULT_CLOSENESS,
                "diversity": self.diversity if self.diversity is not None or self.copies == 1
                else DEFAULT_DIVERSITY,
                # The start image is matched exactly in pixel space.
                "param": "pixel" if self.from_image is not None else None}


@dataclass
class DirectionOptions:
    """Directions in a layer's feature space: each target is then a layer (or ``output``),
    rendered once per direction."""

    direction: list[Path] | None = None
    toward_image: list[Path] | None = None

    @property
    def given(self) -> bool:
        return bool(self.direction or self.toward_image)


@dataclass
class OutputOptions:
    """Where results go, and whether earlier results are reused."""

    out: Path
    quiet: bool = False
    resume: bool = False
    fresh: bool = False


@dataclass
class LayerOptions:
    """Which layers to show, and how many units of each."""

    layers: str | None = None
    count: int = 5
    per_layer: int = 8


@dataclass
class ExamplesOptions:
    """Dataset examples: the natural images that excite each unit most."""

    images: Path | None = None
    top_k: int = 5

    def check(self) -> None:
        if self.top_k < 1:
            raise FeatscopeError(f"--top-k must be at least 1 (got {self.top_k})")
        if self.images is not None and not self.images.is_dir():
            raise FeatscopeError(f"--images {str(self.images)!r} is not a folder")


@dataclass
class ClusterOptions:
    """Where the workers of a distributed command run, and where they store results."""

    cluster: str = "local"
    workers: int | None = None
    store: str | None = None

    def check(self) -> None:
        check_cluster(self.cluster, self.workers)


JUDGE_HELP = ("another classifier (e.g. efficientnet_lite1): does it see each class image's "
              "class, at full size and as 64 and 48 px thumbnails")


def _option(*names: str, help: str) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help)


# name -> (annotation, default): each option's one declaration.
OPTIONS: dict[str, tuple[Any, Any]] = {
    # model
    "model": (Annotated[str, _option("--model", "-m", help=MODEL_SPEC_HELP)], DEFAULT_MODEL),
    "weights": (Annotated[Optional[Path], _option(
        "--weights", help="a local state dict (.pth/.pt or .safetensors) for the model")], None),
    "trust_pickle": (Annotated[bool, _option(
        "--trust-pickle", help="allow loading a whole pickled model (runs code from the file)")],
        False),
    "input_shape": (Annotated[Optional[list[str]], _option(
        "--input-shape", help="input shape without batch, e.g. 3x224x224 or 1x16000; repeat it "
                              "once per input for a model with several inputs")], None),
    "output": (Annotated[Optional[str], _option(
        "--output", help="for a model returning a tuple/dict/dataclass: the key, index or field "
                         "to use as its output (needed only for targets on the output)")], None),
    "search_input": (Annotated[int, _option(
        "--search-input", help="for a model with several inputs: the index of the one to "
                               "search")], 0),
    "fixed_inputs": (Annotated[Optional[Path], _option(
        "--fixed-inputs", help="the other inputs' values (.npz, or .pt list of tensors); zeros "
                               "if unset")], None),
    "normalize": (Annotated[Optional[str], _option(
        "--normalize", help="input normalization: imagenet, none, or MEAN,STD (per channel: "
                            "C means then C stds); default: what the model says (timm "
                            "pretrained_cfg, torchvision weights, a normalization attribute), "
                            "else none")], None),
    "random_weights": (Annotated[bool, _option(
        "--random-weights", help="torchvision:NAME and timm:NAME with random weights: inspect "
                                 "and time an architecture without downloading")], False),
    # inputs that are not images
    "embedding": (Annotated[Optional[str], _option(
        "--embedding", help="token models: the nn.Embedding layer whose output space is "
                            "searched")], None),
    "seq_len": (Annotated[Optional[int], _option(
        "--seq-len", help="token models: the number of tokens to search for")], None),
    "input_kind": (Annotated[Optional[str], _option(
        "--input-kind", help=f"one of {', '.join(KINDS)} (guessed from the shape if unset)")],
        None),
    "sample_rate": (Annotated[Optional[int], _option(
        "--sample-rate", help="signals: samples per second; writes a .wav")], None),
    "bounds": (Annotated[Optional[Path], _option(
        "--bounds", help='vectors: CSV feature,low,high or JSON {"feature": [low, high]}; '
                         "features it does not name keep a default range")], None),
    "vocab": (Annotated[Optional[Path], _option(
        "--vocab", help="tokens: a text file with one token per line, in id order")], None),
    "max_norm": (Annotated[Optional[float], _option(
        "--max-norm", help="vectors, volumes and raw tensors: keep each input inside an L2 "
                           "ball of this radius")], None),
    # rendering
    "preset": (Annotated[str, _option(
        "--preset", help=f"recipe: {AUTO} (classes: {CLASS_PRESET}, other units: "
                         f"{UNIT_PRESET}; everything on transformers, image models without "
                         f"batch norm: {TRANSFORMER_PRESET}), {', '.join(PRESETS)}")], AUTO),
    "steps": (Annotated[Optional[int], _option(
        "--steps", help="search steps (the preset's if unset)")], None),
    "size": (Annotated[Optional[int], _option(
        "--size", help="image side in px (the preset's if unset)")], None),
    "lr": (Annotated[Optional[float], _option(
        "--lr", help="learning rate (the preset's if unset)")], None),
    "param": (Annotated[Optional[str], _option(
        "--param", help=f"image parameterization: {', '.join(PARAMETERIZATIONS)} (the "
                        "preset's if unset)")], None),
    "pool": (Annotated[str, _option(
        "--pool", help=f"reduce a feature map to one number by {' or '.join(POOLS)}")], "mean"),
    "seed": (Annotated[int, _option(
        "--seed", help="random seed; each unit derives its own from it, its target and copy")],
        0),
    "device": (Annotated[str, _option("--device", help="auto, cpu, cuda, cuda:N or mps")],
               "auto"),
    "batch_size": (Annotated[Optional[int], _option(
        "--batch-size", help="units searched together in one forward pass (default: on a "
                             "GPU as many as its free memory holds for the layer, at most "
                             "256; on a CPU about one 224 px image)")], None),
    "precision": (Annotated[str, _option(
        "--precision", help="auto (bfloat16 autocast on CUDA GPUs that compute it natively, "
                            "Ampere and newer; float32 elsewhere), float32, bfloat16 or "
                            "float16")], AUTO_PRECISION),
    "graphs": (Annotated[bool, _option(
        "--graphs/--no-graphs", help="run each search step as one CUDA graph (on CUDA; the "
                                     "featscope preset and others whose transforms draw "
                                     "ahead): no per-step launch cost, the same images to "
                                     "float rounding")], GRAPHS_DEFAULT),
    "warmup": (Annotated[Optional[int], _option(
        "--warmup", help="first steps with leaky ReLU gradients, to revive dead units")], None),
    "crops": (Annotated[Optional[int], _option(
        "--crops", help="random crop views per step (MACO)")], None),
    "polish": (Annotated[Optional[float], _option(
        "--polish", help="a faithful finish: this fraction of the steps, at the end, searches "
                         "the pixels themselves in [0, 1], without transforms, taking each "
                         "unit closer to its "
                         "optimum (the preset's if unset: "
                         + ", ".join(f"{recipe.polish:g} for {name}"
                                     for name, recipe in PRESETS.items() if recipe.polish)
                         + ", 0 for the others; 0 turns it off)")], None),
    "bn_prior": (Annotated[Optional[float], _option(
        "--bn-prior", help="weight of DeepInversion's natural-image prior: each batch norm's "
                           "input statistics kept near its running statistics (models with "
                           "batch norm; the preset's if unset: 0)")], None),
    "spectrum_from": (Annotated[Optional[Path], _option(
        "--spectrum-from", help="folder of images whose spectrum MACO keeps (--param maco)")],
        None),
    "layout": (Annotated[Optional[str], _option(
        "--layout", help="how the targets' layers hold their features, when the model cannot "
                         "say: BCHW (features first), BTC (tokens, features last), TBC "
                         "(sequence-first tokens), BHWC (channels-last map); default: found "
                         "from the model (`featscope layers` shows it)")], None),
    "prefix_tokens": (Annotated[Optional[int], _option(
        "--prefix-tokens", help="token layers: how many tokens (class, distillation, "
                                "register tokens) come before the patch tokens; default: the "
                                "model's num_prefix_tokens, or found from the token count")],
        None),
    # accentuation and copies
    "from_image": (Annotated[Optional[Path], _option(
        "--from-image", help="accentuate: start from this image and stay close to it")], None),
    "closeness": (Annotated[Optional[float], _option(
        "--closeness", help=f"weight keeping --from-image close ({DEFAULT_CLOSENESS:g} if "
                            "unset)")], None),
    "copies": (Annotated[int, _option("--copies", help="diverse images per target")], 1),
    "diversity": (Annotated[Optional[float], _option(
        "--diversity", help=f"weight pushing the copies apart ({DEFAULT_DIVERSITY:g} with "
                            "--copies > 1)")], None),
    # directions
    "direction": (Annotated[Optional[list[Path]], _option(
        "--direction", help="a direction in a layer's feature space, as .npy of shape (C,) "
                            "or (C, H, W): each TARGET is then a LAYER (or `output`, the "
                            "model's output, e.g. an encoder's embedding), rendered along it "
                            "(cosine similarity); repeat for several")], None),
    "toward_image": (Annotated[Optional[list[Path]], _option(
        "--toward-image", help="the direction of this image's features at each TARGET layer "
                               "(or `output`): render the image the model finds closest to "
                               "it there (feature inversion); repeat for several")], None),
    # output
    "out": (Annotated[Path, _option("--out", "-o", help="output folder")], inspect.Parameter.empty),
    "quiet": (Annotated[bool, _option("--quiet", "-q", help="no progress bar or listing")],
              False),
    "resume": (Annotated[bool, _option(
        "--resume", help="reuse the units already rendered in --out with the same settings "
                         "(what every command does; the flag says so explicitly)")], False),
    "fresh": (Annotated[bool, _option(
        "--fresh", help="render every unit again, ignoring results already in --out")], False),
    # layers
    "layers": (Annotated[Optional[str], _option(
        "--layers", help="comma-separated layers, low to high (default: --count layers spread "
                         "evenly over the depth)")], None),
    "count": (Annotated[int, _option(
        "--count", help="how many layers to pick when --layers is not given")], 5),
    "per_layer": (Annotated[int, _option(
        "--per-layer", help="units shown per layer (the first N)")], 8),
    # dataset examples
    "images": (Annotated[Optional[Path], _option(
        "--images", help="a folder of images (searched recursively): show the top-k dataset "
                         "examples of each unit beside its visualization")], None),
    "top_k": (Annotated[int, _option("--top-k", help="dataset examples per unit")], 5),
    # workers
    "cluster": (Annotated[str, _option("--cluster", help=f"where the workers run: {CLUSTER_HELP}")],
                "local"),
    "workers": (Annotated[Optional[int], _option(
        "--workers", help=f"how many workers (default: one per GPU, or {CPU_WORKERS}); "
                          "each uses its share of the cores as torch threads")], None),
    "store": (Annotated[Optional[str], _option(
        "--store", help="where the workers write the units: a folder they all can write, or "
                        "an fsspec URL (s3://..., gs://...); default: --out. --out always "
                        "gets the gallery and a copy of every unit")], None),
}

GROUPS = (ModelOptions, InputOptions, RenderOptions, AccentOptions, DirectionOptions,
          OutputOptions, LayerOptions, ExamplesOptions, ClusterOptions)


def command(name: str) -> Callable[[Callable], Callable]:
    """Register ``fn`` as the command ``name``; its parameters typed with an option group
    become that group's options on the command line, and reach ``fn`` filled in."""
    def decorate(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=True)
        own, grouped, groups = [], [], {}
        for parameter in inspect.signature(fn).parameters.values():
            annotation = hints.get(parameter.name, parameter.annotation)
            if is_dataclass(annotation) and annotation in GROUPS:
                groups[parameter.name] = annotation
                grouped += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                              annotation=OPTIONS[f.name][0],
                                              default=OPTIONS[f.name][1])
                            for f in fields(annotation)]
            else:
                own.append(parameter.replace(annotation=annotation))

        def wrapper(**values: Any) -> Any:
            filled = {parameter: group(**{f.name: values.pop(f.name) for f in fields(group)})
                      for parameter, group in groups.items()}
            return fn(**values, **filled)

        parameters = own + grouped
        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        app.command(name)(wrapper)
        return fn
    return decorate
