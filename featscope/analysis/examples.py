"""Dataset examples: the natural images that activate a unit most, and where.

Every image under a folder (searched recursively) is resized and centre-cropped to the
model's input size, run through the model in batches, and scored with each objective. For
each objective the top-k images are kept, with the box around the location of the strongest
response when the objective reads a spatial feature map (the whole image otherwise).

A folder can also be scanned in shards (``scan_examples`` on parts of ``find_images``'s list,
e.g. on several workers) whose top-k lists ``merge_examples`` joins: shards merged in the
folder's order give the same lists as one scan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..engine.device import module_device, resolve_device
from ..engine.probing import Probe, frozen
from ..errors import FeatscopeError
from ..files.images import find_images, load_prepared, mode_for, to_tensor
from ..files.writing import write_json
from ..models import LoadedModel
from ..objectives.base import Objective
from ..objectives.binding import bind_objectives
from ..objectives.features import Channel, Neuron
from ..progress import progress_bar
from ..rendering.plan import INFERENCE_BATCH


@dataclass(frozen=True)
class Example:
    path: str  # the image file
    activation: float  # the objective on the prepared image
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the prepared image's pixels


@dataclass
class Examples:
    by_target: dict[str, list[Example]]  # best first
    images: int  # how many images were read
    skipped: list[tuple[str, str]]  # (path, reason) of files that could not be read

    def best(self, target: str) -> float | None:
        found = self.by_target.get(target)
        return found[0].activation if found else None

    def ratio(self, target: str, value: float) -> float | None:
        """``value`` (a visualization's activation) over the best natural image's, when that
        is positive (a ratio to a negative or zero maximum says nothing)."""
        best = self.best(target)
        return value / best if best is not None and best > 0 else None

    def to_json(self) -> dict:
        return {"by_target": {t: [asdict(e) for e in found] for t, found in self.by_target.items()},
                "images": self.images, "skipped": [list(s) for s in self.skipped]}

    @classmethod
    def from_json(cls, data: dict) -> Examples:
        by_target = {t: [Example(e["path"], float(e["activation"]), tuple(e["box"]))
                         for e in found] for t, found in data["by_target"].items()}
        return cls(by_target, int(data["images"]), [tuple(s) for s in data["skipped"]])


def _read_batch(paths: Sequence[Path], size: tuple[int, int], mode: str,
                skipped: list[tuple[str, str]]) -> tuple[list[Path], torch.Tensor | None]:
    kept, tensors = [], []
    for path in paths:
        try:
            tensors.append(to_tensor(load_prepared(path, size, mode)))
            kept.append(path)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            skipped.append((str(path), f"{type(error).__name__}: {error}"))
    return kept, (torch.stack(tensors) if tensors else None)


def _spatial_map(objective: Objective, acts: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(B, h, w) feature map that ``objective`` reads, when it reads one of a 2-D layer."""
    if not isinstance(objective, (Channel, Neuron)):
        return None
    act = objective.feature_map(acts[objective.layer])  # (B, C, *S)
    return act[:, objective.k] if act.dim() == 4 else None


def peak_box(fmap: torch.Tensor, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """For (B, h, w) maps, a box around each map's maximum in image pixels (H, W).

    The box is a rough receptive field: twice the map's stride, at least a quarter of the
    image, so that early layers still show some context.
    """
    batch, h, w = fmap.shape
    height, width = size
    flat = fmap.reshape(batch, -1).argmax(dim=1)
    side = min(min(height, width), max(min(height, width) // 4, 2 * max(height // h, width // w)))
    boxes = []
    for index in flat.tolist():
        y, x = divmod(index, w)
        cy, cx = (y + 0.5) * height / h, (x + 0.5) * width / w
        left = int(min(max(cx - side / 2, 0), width - side))
        top = int(min(max(cy - side / 2, 0), height - side))
        boxes.append((left, top, left + side, top + side))
    return boxes


def top_examples(loaded: LoadedModel, objectives: Sequence[Objective], folder: str | Path, *,
                 k: int = 5, batch_size: int = INFERENCE_BATCH,
                 device: str | torch.device | None = None, progress: bool = True) -> Examples:
    """The ``k`` images under ``folder`` that score highest on each objective, best first."""
    paths = find_images(folder)
    found = scan_examples(loaded, objectives, paths, k=k, batch_size=batch_size, device=device,
                          progress=progress)
    return merge_examples([found], k, folder)


def scan_examples(loaded: LoadedModel, objectives: Sequence[Objective],
                  paths: Sequence[str | Path], *, k: int = 5, batch_size: int = INFERENCE_BATCH,
                  device: str | torch.device | None = None, progress: bool = True) -> Examples:
    """``top_examples`` over the image files ``paths`` (a shard of a folder); none of them
    being readable is not an error here (``merge_examples`` says so for the whole folder)."""
    if not loaded.is_image:
        raise FeatscopeError("dataset examples need a model with image input (C, H, W)")
    objectives = bind_objectives(objectives, loaded.module, loaded.input_shape,
                                 loaded.class_names)
    paths = [Path(p) for p in paths]
    size = tuple(loaded.input_shape[1:])
    mode = mode_for(loaded.input_shape[0])
    target = resolve_device(device)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    module = loaded.module
    home = module_device(module)
    normalization = loaded.normalization.to(target)
    best: dict[str, list[Example]] = {o.name: [] for o in objectives}
    skipped: list[tuple[str, str]] = []
    read = 0
    try:
        with frozen(module.to(target)), Probe(module, layers) as probe, torch.no_grad(), \
                progress_bar(len(paths), f"dataset examples ({len(paths)} images)", progress,
                             unit="image") as bar:
            for start in range(0, len(paths), batch_size):
                kept, images = _read_batch(paths[start:start + batch_size], size, mode, skipped)
                bar.update(len(paths[start:start + batch_size]))
                if images is None:
                    continue
                read += len(kept)
                acts = probe.run(normalization(images.to(target)))
                for objective in objectives:
                    _merge(best[objective.name], objective, acts, kept, size, k)
    finally:
        module.to(home)
    return Examples(best, read, skipped)


def merge_examples(parts: Sequence[Examples], k: int, folder: str | Path) -> Examples:
    """One folder's examples from its shards' (given in the folder's order): each
    objective's best ``k`` over all of them."""
    best: dict[str, list[Example]] = {}
    for part in parts:
        for target, found in part.by_target.items():
            merged = best.setdefault(target, [])
            merged.extend(found)
            merged.sort(key=lambda e: e.activation, reverse=True)  # stable: earlier files first
            del merged[k:]
    read = sum(part.images for part in parts)
    skipped = [s for part in parts for s in part.skipped]
    if not read:
        raise FeatscopeError(f"none of the {len(skipped)} image files under {str(folder)!r} "
                             "could be read")
    return Examples(best, read, skipped)


def _merge(best: list[Example], objective: Objective, acts: dict[str, torch.Tensor],
           paths: Sequence[Path], size: tuple[int, int], k: int) -> None:
    """Add this batch's images to ``best`` (kept sorted, at most ``k``)."""
    scores = objective.score(acts).float().cpu()
    fmap = _spatial_map(objective, acts)
    boxes = peak_box(fmap, size) if fmap is not None else [(0, 0, size[1], size[0])] * len(paths)
    best.extend(Example(str(p), float(s), b) for p, s, b in zip(paths, scores, boxes))
    best.sort(key=lambda e: e.activation, reverse=True)
    del best[k:]


def crop(example: Example, size: tuple[int, int]) -> Image.Image:
    """The box of ``example`` cut from its prepared image."""
    return load_prepared(Path(example.path), size).crop(example.box)


def cached_examples(root: str | Path, settings: dict, folder: str | Path,
                    find: Callable[[], Examples]) -> tuple[Examples, bool]:
    """Dataset examples from ``root/cache/examples-KEY.json``, or ``find()`` them and store them.

    KEY covers ``settings`` and every image file's path, size and modification time, so that
    a changed folder is scanned again. Returns the examples and whether they came from disk.
    """
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in find_images(folder)]
    text = json.dumps({**settings, "files": files}, sort_keys=True, default=str)
    path = Path(root) / "cache" / f"examples-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    try:
        return Examples.from_json(json.loads(path.read_text())), True
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or cut short
        pass
    found = find()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(found.to_json(), path)
    return found, False
