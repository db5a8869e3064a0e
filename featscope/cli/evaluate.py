"""`featscope evaluate OUTDIR`: quality metrics for the images of an earlier render."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from ..errors import FeatscopeError
from ..images import load_folder, load_image
from ..metrics import activation_ratio, robustness, transferability
from ..objectives import ClassLogit
from ..outputs import write_json
from ..targets import parse_target
from .common import DeviceOption, WeightsOption, app, console, load


def _read_summary(folder: Path) -> dict:
    path = folder / "summary.json"
    if not path.is_file():
        raise FeatscopeError(f"{str(folder)!r} has no summary.json: give the --out folder of a "
                             "`featscope render` run")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FeatscopeError(f"{str(path)!r} is not valid JSON ({error})") from None


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


@app.command("evaluate")
def evaluate_command(
    folder: Annotated[Path, typer.Argument(help="the --out folder of a render")],
    natural: Annotated[Optional[Path], typer.Option(
        help="folder of natural images: activation ratio to the strongest of them")] = None,
    judge: Annotated[Optional[str], typer.Option(
        help="another classifier (e.g. efficientnet_lite1): class transferability")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="the rendered model (summary.json's if unset)")] = None,
    weights: WeightsOption = None,
    draws: Annotated[int, typer.Option(help="random transforms for robustness")] = 8,
    device: DeviceOption = "auto",
) -> None:
    """Measure robustness, activation ratio (--natural) and transferability (--judge) of the
    images in FOLDER; add them to its summary.json."""
    from ..render import resolve_device

    summary = _read_summary(folder)
    rows = [r for r in summary.get("results", []) if r.get("image")]
    if not rows:
        raise FeatscopeError(f"{str(folder)!r}: summary.json lists no images to evaluate")
    loaded = load(model or summary["model"], weights)
    target_device = resolve_device(device)
    loaded.module.to(target_device)
    settings = summary.get("settings", {})
    objectives = [parse_target(r["target"], loaded.module, loaded.class_names,
                               pool=settings.get("pool", "mean"),
                               border=settings.get("channel_border", 0)) for r in rows]
    mode = "L" if loaded.input_shape[0] == 1 else "RGB"
    images = torch.stack([_fitted(load_image(Path(r["image"]), mode), loaded.input_shape[1:])
                          for r in rows])
    metrics = {"robustness": robustness(loaded, objectives, images, draws=draws).tolist()}
    if natural is not None:
        naturals = load_folder(natural, mode)
        metrics["activation_ratio"] = activation_ratio(loaded, objectives, images, naturals).tolist()
    if judge is not None:
        classes = [o.k if isinstance(o, ClassLogit) else None for o in objectives]
        if not any(c is not None for c in classes):
            raise FeatscopeError("--judge measures class targets (logit:K, prob:K); there are none")
        judged = load(judge, None)
        judged.module.to(target_device)
        keep = [i for i, c in enumerate(classes) if c is not None]
        result = transferability(judged, [classes[i] for i in keep], images[keep])
        for view, hits in result.top(1).items():
            metrics[f"top1_{view}"] = _spread(hits, keep, len(rows))
        for view, hits in result.top(5).items():
            metrics[f"top5_{view}"] = _spread(hits, keep, len(rows))
    for i, row in enumerate(rows):
        row["metrics"] = {name: (_number(values[i]) if isinstance(values[i], float) else values[i])
                          for name, values in metrics.items()}
    summary["metrics"] = {name: _mean([v for v in values if v is not None])
                          for name, values in metrics.items()}
    summary["metrics_settings"] = {"natural": str(natural) if natural else None, "judge": judge,
                                   "draws": draws}
    write_json(summary, folder / "summary.json")
    for name, value in summary["metrics"].items():
        console.print(f"{name}: {value}")


def _fitted(image: torch.Tensor, size) -> torch.Tensor:
    return torch.nn.functional.interpolate(image[None], size=tuple(size), mode="bilinear",
                                           antialias=True, align_corners=False)[0]


def _spread(hits: torch.Tensor, keep: list[int], total: int) -> list[bool | None]:
    """Per-row values for the class rows, None for the others."""
    values: list[bool | None] = [None] * total
    for i, hit in zip(keep, hits.tolist()):
        values[i] = bool(hit)
    return values


def _mean(values: list) -> float | None:
    numbers = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    return round(sum(numbers) / len(numbers), 4) if numbers else None
