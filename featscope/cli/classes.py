"""`featscope classes`: the input the model is most confident belongs to each class."""

from __future__ import annotations

from typing import Annotated, Optional

import torch
import typer

from ..analysis.classify import probabilities
from ..drawing.grid import grid
from ..files.images import load_image, mode_for
from ..files.writing import save_png
from ..views.figures import examples_figure
from ..views.selection import DEFAULT_CLASSES, class_targets
from .app import log
from .options import ExamplesOptions, ModelOptions, OutputOptions, RenderOptions, command
from .session import Job

ClassesOption = Annotated[Optional[str], typer.Option(
    "--classes", help="classes by index or name, e.g. 1,207,goldfinch, or a range 0:16 "
                      f"(default: {DEFAULT_CLASSES} spread over all classes)")]


@command("classes")
def classes_command(
    model: ModelOptions, rendering: RenderOptions, output: OutputOptions,
    examples: ExamplesOptions,
    classes: ClassesOption = None,
    columns: Annotated[int, typer.Option("--columns", help="cells per row of the grid")] = 8,
) -> None:
    """Render the input the model is most confident belongs to each class.

    Writes classes.png (each cell labelled with the class name and the probability the model
    gives it), one PNG per class and summary.json to --out. Running it again reuses the
    classes already rendered.
    """
    job = Job("classes", model, rendering, output, examples=examples)
    objectives = job.objectives(class_targets(job.loaded, classes))
    stored = job.render(objectives)
    found = job.dataset_examples(objectives)
    # The probability of the saved 8-bit image: what the user sees is what is scored.
    mode = mode_for(job.loaded.input_shape[0])
    done = [u for u in stored if u.image is not None]
    chances = {}
    if done:
        images = torch.stack([load_image(job.folder / u.image, mode) for u in done])
        probs = probabilities(job.loaded, images, rendering.device)
        chances = {u.label: float(probs[i, o.k]) for i, (u, o) in
                   enumerate(zip(done, [job.targets[u.label] for u in done]))}
    names = [job.targets[u.label].name.split(":", 1)[1] for u in stored]
    labels = [f"{name} {chances[u.label]:.0%}" if u.label in chances else f"{name} failed"
              for name, u in zip(names, stored)]
    sheet = save_png(grid(job.pictures(stored), labels, columns=columns),
                     job.folder / "classes.png")
    extra = {"classes": [{"index": job.targets[u.label].k, "name": name,
                          "probability": chances.get(u.label)} for u, name in zip(stored, names)],
             "sheet": sheet.name}
    if found is not None:
        extra["examples_figure"] = save_png(examples_figure(
            [u.target for u in stored], job.pictures(stored), [u.objective for u in stored],
            found, names, tuple(job.loaded.input_shape[1:])), job.folder / "examples.png").name
    job.write_summary(extra)
    if not output.quiet:
        log(f"wrote {sheet} ({len(stored)} classes) and {job.folder / 'summary.json'}")
    job.finish()
