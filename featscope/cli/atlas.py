"""`featscope atlas`: every unit of every layer, on Ray workers (or in this process), into the
gallery site, resumable."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..analysis.report import DRAWS, Measured
from ..atlas import Atlas, Progress, Request, adopt, duration
from ..engine.probing import MODEL_OUTPUT
from ..errors import FeatscopeError
from ..inputs.base import InputKind
from ..models import LoadedModel
from ..store.location import is_url
from ..store.store import ResultStore
from ..views.gallery import Measurement
from ..views.selection import choose_layers, class_targets, every_layer, layer_infos
from .app import console, log, warn
from .gallery import write_site
from .loading import load_adapted
from .options import (
    AccentOptions,
    ClusterOptions,
    ExamplesOptions,
    InputOptions,
    ModelOptions,
    OutputOptions,
    RenderOptions,
    command,
)
from .session import Job

# Seconds between rewrites of the gallery and summary.json during a run; at least
# REFRESH_SHARE times what the last rewrite took, so that a huge atlas spends at most 1/20
# of the driver's time on it (workers wait for their next task meanwhile).
GALLERY_EVERY = 30
REFRESH_SHARE = 20


@dataclass(frozen=True)
class AdaptedModel:
    """Loads the command's model in a worker as the command loaded it (Ray sends this to
    every worker; model files must be where the workers can read them)."""

    model: ModelOptions
    given: InputOptions

    def __call__(self) -> tuple[LoadedModel, InputKind]:
        adapted = load_adapted(self.model, self.given)
        return adapted.loaded, adapted.kind


@command("atlas")
def atlas_command(
    model: ModelOptions, rendering: RenderOptions, accent: AccentOptions,
    output: OutputOptions, examples: ExamplesOptions, cluster: ClusterOptions,
    layers: Annotated[Optional[str], typer.Option(
        "--layers", help="comma-separated layers (default: every layer, see --all-layers)")
    ] = None,
    all_layers: Annotated[bool, typer.Option(
        "--all-layers", help="every layer: the network's blocks where it is a sequence of "
                             "blocks, else every layer with a 2-D feature map (the default)")
    ] = False,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="also render classes: all, a range 0:100 or 1,207,goldfinch")
    ] = None,
) -> None:
    """Render every unit of every layer on Ray workers into a browsable gallery (OUT/index.html).

    The work is split into tasks (batches of units of one layer, sized for the workers'
    device; shards of --images for dataset examples) that workers pull as they free up.
    Each unit is stored as soon as it is done; the gallery, summary.json and progress.json
    are updated while the run goes on. A worker that dies has its batch re-queued; Ctrl-C
    stops cleanly, and the same command run again goes on where it stopped. Images are the
    ones `featscope gallery` and `featscope render` give for the same settings.
    """
    cluster.check()
    if layers and all_layers:
        raise FeatscopeError("give --layers or --all-layers, not both")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", str(output.out)):  # a URL (as a Path: s3:/b)
        raise FeatscopeError(f"--out {output.out} must be a local folder (it gets the gallery); "
                             "to keep the units on object storage, give --store URL")
    job = Job("atlas", model, rendering, output, accent, examples=examples,
              copies_to_top=False)
    if not job.loaded.is_image:
        raise FeatscopeError(f"the atlas is a gallery of images, and this model's input "
                             f"{tuple(job.loaded.input_shape)} is not one; use featscope "
                             "render or sheet")
    infos = layer_infos(job.loaded)
    names = layers or ",".join(every_layer(list(infos.values())))
    chosen = choose_layers(job.loaded, names, 0, None, infos, rendering.layout,
                           rendering.prefix_tokens)
    targets = [f"{layer}:{k}" for layer, units in chosen.items() for k in units]
    if classes:
        targets += class_targets(job.loaded, classes, infos)
    unique = job.objectives(targets)  # one per target (dataset examples)
    objectives, labels = job.with_copies(unique, targets)
    todo = job.resume(objectives, labels)
    store = cluster.store or str(job.folder)
    mirror = None if _same_folder(store, job.folder) else job.store
    if mirror is not None and todo:  # units the workers stored before a driver stopped
        adopted = adopt(ResultStore(store, job.settings(), job.kind), job.store, todo)
        job.record(adopted, summary=False)
        todo = [label for label in todo if label not in {u.label for u in adopted}]
    request = Request(objectives, labels, todo, job.render_arguments(), store, job.settings(),
                      unique, examples.top_k)
    sections = _sections(chosen, labels, job)
    site = Site(job, sections, infos, chosen)
    quiet = output.quiet
    live = Live(console=console, refresh_per_second=2, transient=False) \
        if not quiet and console.is_terminal else None
    atlas = Atlas(request, AdaptedModel(model, job.given), cluster=cluster.cluster,
                  workers=cluster.workers, loaded=job.loaded, kind=job.kind, mirror=mirror,
                  folder=job.folder, quiet=quiet,
                  on_change=(lambda p: live.update(_display(p))) if live else None,
                  tick=lambda: site.refresh(atlas.progress, say=not quiet and live is None),
                  log=None if quiet else log, warn=warn)
    try:
        if live is not None:
            live.start()
        with atlas:
            if examples.images is not None:
                job.dataset_examples(unique, find=lambda: atlas.examples(examples.images))
            job.render_missing(objectives, labels, todo,
                               renderer=lambda *_: atlas.render(
                                   lambda units: job.record(units, summary=False)))
    finally:
        if live is not None:
            live.stop()
        site.extra["atlas"] = {"cluster": cluster.cluster, "store": store,
                               "workers": atlas.layout.describe() if atlas.layout else
                               "this process", "progress": "progress.json"}
        index = site.refresh(atlas.progress, force=True)
    if not quiet:
        log(f"atlas: {atlas.progress.summary()}; wrote the gallery: "
            f"{Path(index).resolve().as_uri()}")
    job.finish()


def _same_folder(store: str, folder: Path) -> bool:
    return not is_url(store) and Path(store).resolve() == folder.resolve()


def _sections(chosen: dict[str, list[int]], labels: list[str], job: Job
              ) -> list[tuple[str, list[tuple[str, str]]]]:
    """The gallery's layers, each with (the unit's name in its layer, its label)."""
    by_target: dict[str, list[str]] = {}
    for label in labels:
        by_target.setdefault(job.targets[label].name, []).append(label)
    sections = []
    for layer, units in chosen.items():
        members = [(label.split(":", 1)[1], label) for k in units
                   for label in by_target.get(f"{layer}:{k}", [])]
        sections.append((layer, members))
    classes = [(label.split(":", 1)[1], label) for label in labels
               if job.targets[label].layers == {MODEL_OUTPUT}]
    if classes:
        sections.append((MODEL_OUTPUT, classes))
    return sections


class Site:
    """The gallery and summary.json of a run, rewritten as units arrive (GALLERY_EVERY)."""

    def __init__(self, job: Job, sections, infos, chosen: dict[str, list[int]]):
        self.job, self.sections, self.infos = job, sections, infos
        self.extra: dict = {"layers": chosen}
        self.written: set[str] = set()  # units whose thumbnails are written
        self.last = 0.0
        self.every = float(GALLERY_EVERY)

    def refresh(self, progress: Progress, force: bool = False, say: bool = False
                ) -> Path | None:
        """Rewrite both (at most every GALLERY_EVERY s unless ``force``); ``say``: log the
        run's line too. The index page's path, when written."""
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return None
        running = progress.state in ("starting", "running")
        measured = {label: Measurement(unit.metrics) for label, unit in self.job.stored.items()
                    if unit.metrics}
        if measured:  # by the workers (robustness), as the gallery's summary has them
            self.extra.update(metrics=Measured([m.metrics for m in measured.values()]).means(),
                              metrics_settings={"natural": None, "judge": None, "draws": DRAWS})
        self.job.write_summary(self.extra)
        status = f"{'rendering: ' if running else progress.state + ': '}{progress.summary()}"
        if progress.state == "interrupted":
            status += "; run the same command again to go on"
        index = write_site(self.job, self.sections, self.infos, status=status,
                           refresh=round(self.every) if running else None, written=self.written,
                           measured=measured)
        self.last = time.monotonic()
        self.every = max(GALLERY_EVERY, REFRESH_SHARE * (self.last - now))
        if say:
            log(f"atlas: {progress.summary()}")
        return index


def _display(progress: Progress) -> Group:
    """The terminal's live view: the run's line and a row per worker."""
    table = Table(box=None, pad_edge=False)
    for column in ("worker", "where", "device", "state", "doing", "units"):
        table.add_column(column)
    for w in progress.workers:
        since = duration(time.time() - w.since)
        table.add_row(str(w.index), w.name or "-", w.device or "-", f"{w.state} {since}",
                      w.task or "", str(w.units))
    return Group(Text(f"atlas ({progress.phase}): {progress.summary()}"), table)

