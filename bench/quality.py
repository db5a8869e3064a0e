"""Quality benchmark: presets compared at an equal number of steps on the embedded model.

    python -m bench.quality                        # 50 classes, 256 steps (a GPU: minutes)
    python -m bench.quality --classes 4 --steps 32 # a reduced run (CPU)

For each preset, one class-logit visualization per class (ImageNet classes 0, 20, 40, ...)
is rendered with EfficientNet-Lite0, then measured: activation ratio (the logit over its best
value on scikit-image's photos), robustness (logit under small random transforms / logit) on
Lite0, and transferability judged by EfficientNet-Lite1 (top-1/top-5 at full size and as
64/48 px thumbnails). Writes docs/quality-results.json, docs/quality-results.md and
docs/quality-examples.jpg. Results are written after every preset, so a partial run keeps
what it finished.
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
}


def photos() -> list[torch.Tensor]:
    import skimage.data
    return [torch.from_numpy(np.asarray(getattr(skimage.data, n)())[..., :3].copy())
            .permute(2, 0, 1).float().div(255) for n in PHOTOS]


def measure(lite0, lite1, classes, images, naturals) -> dict:
    objectives = [fs.class_logit(k) for k in classes]
    ratio = metrics.activation_ratio(lite0, objectives, images, naturals)
    robust = metrics.robustness(lite0, objectives, images)
    transfer = metrics.transferability(lite1, classes, images)
    return {"activation_ratio": float(ratio.nanmedian()), "robustness": float(robust.median()),
            **transfer.summary()}


def render_preset(lite0, name: str, classes, steps: int, device: str, seed: int = 0):
    preset, overrides = ("featscope", CANDIDATES[name]) if name in CANDIDATES else (name, {})
    start = time.perf_counter()
    # The batching plan's default batch size, as a user gets it.
    result = fs.render(lite0, [fs.class_logit(k) for k in classes], preset=preset, steps=steps,
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
    head = ("| preset | activation ratio | robustness | top-1 full | top-5 full | top-1 64 px | "
            "top-5 64 px | top-1 48 px | top-5 48 px | seconds |")
    lines = [f"Settings: {json.dumps(settings)}", "", head, "|" + "---|" * 10]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['activation_ratio']:.2f} | {r['robustness']:.2f} | "
            f"{r['top1_full']:.0%} | {r['top5_full']:.0%} | {r['top1_64px']:.0%} | "
            f"{r['top5_64px']:.0%} | {r['top1_48px']:.0%} | {r['top5_48px']:.0%} | "
            f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=50, help="number of ImageNet classes")
    parser.add_argument("--steps", type=int, default=256, help="steps, equal for every preset")
    parser.add_argument("--presets", nargs="*", default=[*ANCHORS, "auto", "featscope"],
                        help="presets to compare; auto (the default) renders classes as legible")
    parser.add_argument("--candidates", nargs="*", default=None,
                        help="also try these CANDIDATES (all if none named)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="the renders' seed")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    classes = [round(i * 1000 / args.classes) for i in range(args.classes)]
    tried = [] if args.candidates is None else (args.candidates or list(CANDIDATES))
    names = list(args.presets) + tried
    lite0 = fs.load_model()
    lite1 = fs.load_model("efficientnet_lite1")
    lite1.module.to(device)
    naturals = photos()
    machine = torch.cuda.get_device_name() if device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    settings = {"classes": len(classes), "steps": args.steps, "seed": args.seed, "model": "efficientnet_lite0",
                "judge": "efficientnet_lite1", "machine": machine}
    args.out.mkdir(parents=True, exist_ok=True)
    results, rows = {}, {}
    for name in names:
        result, seconds = render_preset(lite0, name, classes, args.steps, device, args.seed)
        lite0.module.to(device)
        results[name] = {**measure(lite0, lite1, classes, result.images, naturals),
                         "seconds": seconds}
        lite0.module.to("cpu")
        rows[name] = result.images
        print(name, json.dumps(results[name]), flush=True)
        (args.out / "quality-results.json").write_text(
            json.dumps({"settings": settings, "classes": classes, "results": results}, indent=2))
        (args.out / "quality-results.md").write_text(table(results, settings))
        figure(rows, classes, args.out / "quality-examples.jpg")


if __name__ == "__main__":
    main()
