"""`featscope evaluate OUTDIR`: quality metrics for the images of an earlier render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from ..analysis.report import DRAWS, load_judge, measure
from ..analysis.routes import flagged_note, skipped_note
from ..engine.device import resolve_device
from ..errors import FeatscopeError
from ..files.images import load_folder, load_image, mode_for
from ..files.writing import write_json
from ..models import load_model
from ..objectives.targets import parse_target
from ..store.summary import SUMMARY, read_summary, resolve
from ..transforms.affine import resize_to
from .app import app, log
from .options import JUDGE_HELP


def _read(folder: Path) -> dict:
    if not (folder / SUMMARY).is_file():
        raise FeatscopeError(f"{str(folder)!r} has no summary.json: give the --out folder of a "
                             "featscope render, sheet, classes, overview or gallery run")
    try:
        return read_summary(folder)
    except (OSError, ValueError) as error:
        raise FeatscopeError(f"{str(folder / SUMMARY)!r} is not a featscope summary ({error})") \
            from None


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
    judge: Annotated[Optional[str], typer.Option("--judge", help=JUDGE_HELP)] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="the rendered model (summary.json's if unset)")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="a local state dict for the model")] = None,
    draws: Annotated[int, typer.Option("--draws", help="random transforms for robustness")] = DRAWS,
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
    naturals = load_folder(natural, mode) if natural is not None else None
    judged = load_judge(judge, loaded, objectives) if judge else None
    if judged is not None:
        judged.module.to(target_device)
    measured = measure(loaded, objectives, images, draws=draws, naturals=naturals, judge=judged)
    if measured.traced:
        log(flagged_note([row["target"] for row in rows], measured.routes))
    elif naturals is not None:
        log(skipped_note(len(naturals), "--natural"))
    for i, row in enumerate(rows):
        row.update(measured.row(i))
    summary["metrics"] = measured.means()
    summary["metrics_settings"] = {"natural": str(natural) if natural else None, "judge": judge,
                                   "draws": draws}
    write_json(summary, folder / SUMMARY)
    for name, value in summary["metrics"].items():
        log(f"{name}: {value}")

