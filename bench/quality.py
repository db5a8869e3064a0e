"""Quality benchmark: class visualizations judged by a model no recipe was tuned against.

    python -m bench.quality                                   # held-out split, each preset's
                                                              # default steps, Lite0 -> Lite1
    python -m bench.quality --render lite1                    # the other direction
    python -m bench.quality --split tuning --judge self --steps 64 --candidates thumbs-40
                                                              # choosing a recipe

The ImageNet classes are split once, at random (``SPLIT_SEED``): a tuning split of 50
classes on which recipes are chosen, judged by the rendering model itself, and a held-out
split of 100 classes that only reports, judged by the other shipped model (render with
EfficientNet-Lite0 and judge with Lite1, or the reverse), at full size and as 64/48 px
thumbnails. Per preset: activation ratio (the logit over its best value on scikit-image's
photos), robustness (logit under small random transforms / logit), top-1/top-5 of the
judge, seconds per image. Writes quality-results.json/.md and quality-examples.jpg to
--out (docs/ by default); results are written after every preset.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import featscope as fs
from featscope.analysis import metrics
from featscope.engine import resolve_device
from featscope.files import to_pil
from featscope.models.imagenet import imagenet_class_names

DOCS = Path(__file__).resolve().parent.parent / "docs"
# The class split, made once: classes are shuffled with this seed; the first 50 are the
# tuning split, the next 100 the held-out split.
SPLIT_SEED = 20261127
SPLITS = {"tuning": slice(0, 50), "held-out": slice(50, 150)}
MODELS = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1"}
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
ANCHORS = ("keras", "lucid", "maco")
# The first `legible` (96 px), which the variations below start from.
_LEGIBLE = {"resolution": 96 / 224, "transform_strength": 224 / 96, "crops": 2,
            "crop_start": (0.75, 1.0), "crop_end": (0.75, 1.0), "crop_rotate": 5.0}
# Alternative recipes tried against the anchors ("low-96-views" became the "legible" preset,
# then "legible-112" replaced it).
CANDIDATES: dict[str, dict] = {
    "low-96-lucid": dict(size=96, upsample_below=224, transforms="lucid"),
    "low-112": dict(size=112, upsample_below=224, transforms="scaled"),
    "low-96-views": dict(size=96, upsample_below=224, transforms="lucid", crops=2,
                         crop_start=(0.75, 1.0), crop_end=(0.75, 1.0), crop_rotate=5.0),
    # One view per step (half the model evaluations of two views; neurons keep their place):
    # the image at a fraction of the input side, Lucid's transforms at that scale, fused.
    "one-96": dict(crops=0, resolution=96 / 224, transform_strength=224 / 96),
    "one-128": dict(crops=0, resolution=128 / 224, transform_strength=224 / 128),
    # Variations of `legible` aimed at robustness.
    "legible-3": {**_LEGIBLE, "crops": 3},
    "legible-strong": {**_LEGIBLE, "transform_strength": 1.5 * 224 / 96},
    "legible-rot10": {**_LEGIBLE, "crop_rotate": 10.0},
    "legible-112": {**_LEGIBLE, "resolution": 112 / 224, "transform_strength": 224 / 112},
    "legible-128": {**_LEGIBLE, "resolution": 128 / 224, "transform_strength": 224 / 128},
    # Views that also zoom out (the canvas on a grey border), as Lucid's padding does.
    "legible-out": {**_LEGIBLE, "crop_start": (0.75, 1.15), "crop_end": (0.75, 1.15)},
    "legible-out-wide": {**_LEGIBLE, "crop_start": (0.8, 1.3), "crop_end": (0.8, 1.3)},
    # 0.2: views also seen as thumbnails (a side fraction of the model input, enlarged back),
    # DeepInversion's batch-norm prior, and the faithful finish, on top of legible-112.
    "thumbs-40": {"preset": "legible", "thumbnail_views": (0.2, 1.0)},
    "thumbs-60": {"preset": "legible", "thumbnail_views": (0.3, 1.0)},
    "thumbs-40-3": {"preset": "legible", "thumbnail_views": (0.2, 1.0), "crops": 3},
    "bn-0.01": {"preset": "legible", "bn_prior": 0.01},
    "bn-0.003": {"preset": "legible", "bn_prior": 0.003},
    "thumbs-40-bn": {"preset": "legible", "thumbnail_views": (0.2, 1.0), "bn_prior": 0.003},
    "legible-polish": {"preset": "legible", "polish": 0.2, "polish_lr": 0.1},
}


def split_classes(split: str) -> list[int]:
    """The classes of a split (see ``SPLIT_SEED``)."""
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    return sorted(order[SPLITS[split]])


def photos() -> list[torch.Tensor]:
    import skimage.data
    return [torch.from_numpy(np.asarray(getattr(skimage.data, n)())[..., :3].copy())
            .permute(2, 0, 1).float().div(255) for n in PHOTOS]


def measure(model, judge, classes, images, naturals) -> dict:
    objectives = [fs.class_logit(k) for k in classes]
    ratio = metrics.activation_ratio(model, objectives, images, naturals)
    robust = metrics.robustness(model, objectives, images)
    transfer = metrics.transferability(judge, classes, images)
    return {"activation_ratio": float(ratio.nanmedian()), "robustness": float(robust.median()),
            **transfer.summary()}


def render_preset(model, name: str, classes, steps: int | None, device: str, seed: int = 0):
    """Render the classes with a preset or a candidate; (result, seconds)."""
    overrides = dict(CANDIDATES[name]) if name in CANDIDATES else {}
    preset = overrides.pop("preset", "featscope" if name in CANDIDATES else name)
    start = time.perf_counter()
    # The batching plan's default batch size, as a user gets it.
    result = fs.render(model, [fs.class_logit(k) for k in classes], preset=preset, steps=steps,
                       device=device, seed=seed, **overrides)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def figure(rows: dict[str, torch.Tensor], classes, path: Path, columns: int = 6,
           tile: int = 128) -> None:
    names = list(rows)
    label_w = 130
    canvas = Image.new("RGB", (label_w + columns * (tile + 4), len(names) * (tile + 4) + 20),
                       "white")
    draw = ImageDraw.Draw(canvas)
    labels = imagenet_class_names()
    for j in range(min(columns, len(classes))):
        draw.text((label_w + j * (tile + 4), 4), labels[classes[j]][:20], fill="black")
    for i, name in enumerate(names):
        y = 20 + i * (tile + 4)
        draw.text((4, y + tile // 2), name, fill="black")
        for j, image in enumerate(rows[name][:columns]):
            canvas.paste(to_pil(image).convert("RGB").resize((tile, tile), Image.BILINEAR),
                         (label_w + j * (tile + 4), y))
    canvas.save(path, quality=85)


def table(results: dict, settings: dict) -> str:
    head = ("| preset | steps | top-1 full | top-1 64 px | top-1 48 px | top-5 full | "
            "top-5 64 px | top-5 48 px | robustness | activation ratio | s/image |")
    lines = [f"Settings: {json.dumps(settings)}", "", head, "|" + "---|" * 11]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['steps']} | {r['top1_full']:.0%} | {r['top1_64px']:.0%} | "
            f"{r['top1_48px']:.0%} | {r['top5_full']:.0%} | {r['top5_64px']:.0%} | "
            f"{r['top5_48px']:.0%} | {r['robustness']:.2f} | {r['activation_ratio']:.2f} | "
            f"{r['seconds_per_image']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=list(SPLITS), default="held-out")
    parser.add_argument("--classes", type=int, default=None,
                        help="use only the first N classes of the split")
    parser.add_argument("--render", choices=list(MODELS), default="lite0")
    parser.add_argument("--judge", choices=["other", "self"], default="other",
                        help="other: the model that did not render (reporting); self: the "
                             "rendering model (choosing recipes on the tuning split)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps for every preset (default: each preset's own)")
    parser.add_argument("--presets", nargs="*", default=["auto", *ANCHORS],
                        help="presets to compare; auto (the default) renders classes as legible")
    parser.add_argument("--candidates", nargs="*", default=None,
                        help="also try these CANDIDATES (all if none named)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="the renders' seed")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    classes = split_classes(args.split)[:args.classes]
    tried = [] if args.candidates is None else (args.candidates or list(CANDIDATES))
    names = list(args.presets) + tried
    model = fs.load_model(MODELS[args.render])
    other = "lite1" if args.render == "lite0" else "lite0"
    judge = model if args.judge == "self" else fs.load_model(MODELS[other])
    judge.module.to(device)
    naturals = photos()
    machine = torch.cuda.get_device_name() if device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    settings = {"split": args.split, "classes": len(classes), "split_seed": SPLIT_SEED,
                "steps": args.steps or "each preset's default", "seed": args.seed,
                "model": MODELS[args.render],
                "judge": MODELS[args.render if args.judge == "self" else other],
                "machine": machine}
    args.out.mkdir(parents=True, exist_ok=True)
    results, rows = {}, {}
    for name in names:
        result, seconds = render_preset(model, name, classes, args.steps, device, args.seed)
        model.module.to(device)
        results[name] = {**measure(model, judge, classes, result.images, naturals),
                         "steps": result.recipe.steps, "seconds": seconds,
                         "seconds_per_image": seconds / len(classes)}
        model.module.to("cpu")
        rows[name] = result.images
        print(name, json.dumps(results[name]), flush=True)
        (args.out / "quality-results.json").write_text(
            json.dumps({"settings": settings, "classes": classes, "results": results}, indent=2))
        (args.out / "quality-results.md").write_text(table(results, settings))
        figure(rows, classes, args.out / "quality-examples.jpg")


if __name__ == "__main__":
    main()
