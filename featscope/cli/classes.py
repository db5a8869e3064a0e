"""`featscope classes`: the input the model is most confident belongs to each class."""

from __future__ import annotations

from typing import Annotated, Optional

import torch
import typer

from ..classify import probabilities
from ..dataset import to_tensor
from ..errors import FeatscopeError
from ..models import DEFAULT_MODEL, LoadedModel
from ..objectives import ClassLogit
from ..outputs import prepare_dir, save_png
from ..probing import MODEL_OUTPUT
from ..render import AUTO
from ..sheets import grid, parse_units
from ..targets import parse_target
from .common import DeviceOption, ModelOption, WeightsOption, app, console, load
from .units import (BatchOption, ColumnsOption, ImagesOption, Job, LrOption, OutOption,
                    ParamOption, PresetOption, QuietOption, SeedOption, SizeOption, StepsOption,
                    TopKOption, dataset_examples, examples_figure, layer_infos, pictures,
                    render_units, write_results)

DEFAULT_CLASSES = 8


def class_objectives(loaded: LoadedModel, spec: str | None) -> list[ClassLogit]:
    """Logit objectives from "1,207,goldfinch" or a range "0:8" (default: 8 spread classes)."""
    output = layer_infos(loaded).get(MODEL_OUTPUT)
    count = output.shape[-1] if output is not None and output.shape else None
    if not count:
        raise FeatscopeError("this model's output is not a tensor of class scores")
    if spec is None:
        step = max(1, count // DEFAULT_CLASSES)
        items = [str(k) for k in range(0, count, step)][:DEFAULT_CLASSES]
    elif ":" in spec and "," not in spec:
        items = [str(k) for k in parse_units(spec, count)]
    else:
        items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise FeatscopeError(f"--classes {spec!r} names no class")
    return [parse_target(f"logit:{item}", loaded.module, loaded.class_names) for item in items]


@app.command("classes")
def classes_command(
    out: OutOption,
    classes: Annotated[Optional[str], typer.Option(
        help='classes by index or name, e.g. 1,207,goldfinch, or a range 0:16 '
             f'(default: {DEFAULT_CLASSES} spread over all classes)')] = None,
    columns: ColumnsOption = 8,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    preset: PresetOption = AUTO,  # classes: legible
    steps: StepsOption = None,
    size: SizeOption = None,
    lr: LrOption = None,
    param: ParamOption = None,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    batch_size: BatchOption = None,
    images: ImagesOption = None,
    top_k: TopKOption = 5,
    quiet: QuietOption = False,
) -> None:
    """Render the input the model is most confident belongs to each class.

    Writes classes.png (each cell labelled with the class name and the probability the model
    gives it), one PNG per class and summary.json to --out. Running it again resumes.
    """
    job = Job(model=model, weights=weights, preset=preset, steps=steps, size=size, lr=lr,
              param=param, pool="mean", seed=seed, device=device, batch_size=batch_size,
              images=images, top_k=top_k, quiet=quiet)
    job.check()
    loaded = load(model, weights)
    objectives = class_objectives(loaded, classes)
    folder = prepare_dir(out)
    rendered = render_units(job, loaded, objectives, folder)
    examples = dataset_examples(job, loaded, objectives, folder)
    visuals = pictures(rendered.units)
    # The probability of the saved 8-bit image: what the user sees is what is scored.
    probs = probabilities(loaded, torch.stack([to_tensor(v) for v in visuals]), job.device)
    chances = [float(probs[i, o.k]) for i, o in enumerate(objectives)]
    names = [o.name.split(":", 1)[1] for o in objectives]
    labels = [f"{name} {p:.0%}" for name, p in zip(names, chances)]
    sheet = save_png(grid(visuals, labels, columns=columns), folder / "classes.png")
    extra = {"classes": [{"index": o.k, "name": n, "probability": p}
                         for o, n, p in zip(objectives, names, chances)], "sheet": str(sheet)}
    if examples is not None:
        figure = examples_figure(rendered, examples, names, tuple(loaded.input_shape[1:]))
        extra["examples_figure"] = str(save_png(figure, folder / "examples.png"))
    write_results(folder, job, loaded, rendered, examples, extra)
    if not quiet:
        console.print(f"wrote {sheet} ({len(objectives)} classes) and "
                      f"{folder / 'summary.json'}", highlight=False)
