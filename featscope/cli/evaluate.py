"""`featscope evaluate OUTDIR`: quality metrics for the images of an earlier render."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from ..analysis.metrics import activation_ratio, natural_scores, robustness, transferability
from ..analysis.routes import MIN_NATURALS, flagged_note, skipped_note, trace_routes
from ..engine.device import resolve_device
from ..errors import FeatscopeError
from ..files.images import load_folder, load_image, mode_for
from ..files.writing import write_json
from ..models import load_model
from ..objectives.features import ClassLogit
from ..objectives.targets import parse_target
from ..store.summary import SUMMARY, read_summary, resolve
from ..transforms.affine import resize_to
from .app import app, log


def _read(folder: Path) -> dict:
    if not (folder / SUMMARY).is_file():
        raise FeatscopeError(f"{str(folder)!r} has no summary.json: give the --out folder of a "
                             "featscope render, sheet, classes, overview or gallery run")
    try:
        return read_summary(folder)
    except (OSError, ValueError) as error:
        raise FeatscopeError(f"{str(folder / SUMMARY)!r} is not a featscope summary ({error})") \
            from None


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _row_settings(summary: dict, row: dict) -> tuple[str, int]:
    """The pooling and the channel border a row was rendered with."""
    settings = (summary.get("runs") or {}).get(row.get("settings_key")) or {}
    recipe = (settings.get("recipes") or {}).get(row.get("recipe")) or {}
    return settings.get("pool", "mean"), int(recipe.get("channel_border", 0))


@app.command("evaluate")
def evaluate_command(
    folder: Annotated[Path, typer.Argument(help="the --out folder of a render")],
    natural: Annotated[Optional[Path], typer.Option(
        "--natural", help="folder of natural images: activation ratio to the strongest of "
                          "them, and the route check (does each visualization travel through "
                          "the network as its unit's top natural images do)")] = None,
    judge: Annotated[Optional[str], typer.Option(
        "--judge", help="another classifier (e.g. efficientnet_lite1): class "
                        "transferability")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="the rendered model (summary.json's if unset)")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="a local state dict for the model")] = None,
    draws: Annotated[int, typer.Option("--draws", help="random transforms for robustness")] = 8,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps")
                      ] = "auto",
) -> None:
    """Measure robustness, activation ratio and the route check (--natural) and
    transferability (--judge) of the images in FOLDER; add them to its summary.json."""
    summary = _read(folder)
    rows = [r for r in summary["results"] if r.get("image")]
    if not rows:
        raise FeatscopeError(f"{str(folder)!r}: summary.json lists no images to evaluate")
    loaded = load_model(model or summary["model"], weights=str(weights) if weights else None)
    target_device = resolve_device(device)
    loaded.module.to(target_device)
    objectives = []
    for row in rows:
        pool, border = _row_settings(summary, row)
        name = (row.get("name") or row["target"]).removesuffix(f"/{pool}")
        objectives.append(parse_target(name, loaded.module, loaded.class_names, pool=pool,
                                       border=border))
    mode = mode_for(loaded.input_shape[0])
    images = torch.cat([resize_to(load_image(resolve(folder, r["image"]), mode)[None],
                                  loaded.input_shape[1:]) for r in rows])
    metrics = {"robustness": robustness(loaded, objectives, images, draws=draws).tolist()}
    if natural is not None:
        naturals = load_folder(natural, mode)
        scores = natural_scores(loaded, objectives, naturals)  # once, for both
        ratios = activation_ratio(loaded, objectives, images, naturals, scores=scores)
        metrics["activation_ratio"] = ratios.tolist()
        if len(naturals) >= MIN_NATURALS:
            routes = trace_routes(loaded, objectives, images, naturals, scores=scores)
            metrics["route_agreement"] = [route.agreement for route in routes]
            for row, route in zip(rows, routes):
                row["route"] = route.to_dict()
            log(flagged_note([row["target"] for row in rows], routes))
        else:
            log(skipped_note(len(naturals), "--natural"))
    if judge is not None:
        classes = [o.k if isinstance(o, ClassLogit) else None for o in objectives]
        if not any(c is not None for c in classes):
            raise FeatscopeError("--judge measures class targets (logit:K, prob:K); there are none")
        judged = load_model(judge)
        judged.module.to(target_device)
        keep = [i for i, c in enumerate(classes) if c is not None]
        result = transferability(judged, [classes[i] for i in keep], images[keep])
        for k in (1, 5):
            for view, hits in result.top(k).items():
                metrics[f"top{k}_{view}"] = _spread(hits, keep, len(rows))
    for i, row in enumerate(rows):
        row["metrics"] = {name: (_number(values[i]) if isinstance(values[i], float) else values[i])
                          for name, values in metrics.items()}
    summary["metrics"] = {name: _mean([v for v in values if v is not None])
                          for name, values in metrics.items()}
    summary["metrics_settings"] = {"natural": str(natural) if natural else None, "judge": judge,
                                   "draws": draws}
    write_json(summary, folder / SUMMARY)
    for name, value in summary["metrics"].items():
        log(f"{name}: {value}")


def _spread(hits: torch.Tensor, keep: list[int], total: int) -> list[bool | None]:
    """Per-row values for the class rows, None for the others."""
    values: list[bool | None] = [None] * total
    for i, hit in zip(keep, hits.tolist()):
        values[i] = bool(hit)
    return values


def _mean(values: list) -> float | None:
    numbers = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    return round(sum(numbers) / len(numbers), 4) if numbers else None
