"""Dataset examples: the natural images that activate a unit most, and where.

Every image under a folder (searched recursively) is resized and centre-cropped to the
model's input size, run through the model in batches, and scored with each objective. For
each objective the top-k images are kept, with the box around the location of the strongest
response when the objective reads a spatial feature map (the whole image otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .errors import FeatscopeError
from .models import LoadedModel
from .objectives import Channel, Neuron, Objective, _features_first
from .probing import Probe, frozen
from .render import resolve_device

DATASET_BATCH = 16  # images per forward pass when scanning a folder (no gradients)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm"})


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

    def to_json(self) -> dict:
        return {"by_target": {t: [asdict(e) for e in found] for t, found in self.by_target.items()},
                "images": self.images, "skipped": [list(s) for s in self.skipped]}

    @classmethod
    def from_json(cls, data: dict) -> Examples:
        by_target = {t: [Example(e["path"], float(e["activation"]), tuple(e["box"]))
                         for e in found] for t, found in data["by_target"].items()}
        return cls(by_target, int(data["images"]), [tuple(s) for s in data["skipped"]])


def find_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix), in a stable order."""
    root = Path(folder)
    if not root.is_dir():
        raise FeatscopeError(f"--images {str(root)!r} is not a folder")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FeatscopeError(f"no images under {str(root)!r} (looked for "
                             f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def prepare(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize so that the image covers ``size`` (H, W), then centre-crop to it."""
    height, width = size
    scale = max(height / picture.height, width / picture.width)
    resized = picture.convert("RGB").resize(
        (max(width, round(picture.width * scale)), max(height, round(picture.height * scale))),
        Image.Resampling.BICUBIC)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_prepared(path: Path, size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as picture:
        return prepare(picture, size)


def to_tensor(picture: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> (3, H, W) in [0, 1]."""
    data = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
    return data.reshape(picture.height, picture.width, 3).permute(2, 0, 1).float() / 255


def _read_batch(paths: Sequence[Path], size: tuple[int, int],
                skipped: list[tuple[str, str]]) -> tuple[list[Path], torch.Tensor | None]:
    kept, tensors = [], []
    for path in paths:
        try:
            tensors.append(to_tensor(load_prepared(path, size)))
            kept.append(path)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            skipped.append((str(path), f"{type(error).__name__}: {error}"))
    return kept, (torch.stack(tensors) if tensors else None)


def _spatial_map(objective: Objective, acts: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(B, h, w) feature map that ``objective`` reads, when it reads one of a 2-D layer."""
    if not isinstance(objective, (Channel, Neuron)):
        return None
    act = _features_first(acts[objective.layer], objective.feature_axis)
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
                 k: int = 5, batch_size: int = DATASET_BATCH,
                 device: str | torch.device | None = None, progress: bool = True) -> Examples:
    """The ``k`` images under ``folder`` that score highest on each objective, best first."""
    if not loaded.is_image:
        raise FeatscopeError("dataset examples need a model with image input (C, H, W)")
    paths = find_images(folder)
    size = tuple(loaded.input_shape[1:])
    target = resolve_device(device)
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    module = loaded.module
    home = next(module.parameters(), torch.empty(0)).device
    normalization = loaded.normalization.to(target)
    best: dict[str, list[Example]] = {o.name: [] for o in objectives}
    skipped: list[tuple[str, str]] = []
    read = 0
    try:
        with frozen(module.to(target)), Probe(module, layers) as probe, torch.no_grad():
            for start in tqdm(range(0, len(paths), batch_size), disable=not progress,
                              desc=f"dataset examples ({len(paths)} images)", unit="batch"):
                kept, images = _read_batch(paths[start:start + batch_size], size, skipped)
                if images is None:
                    continue
                read += len(kept)
                acts = probe.run(normalization(images.to(target)))
                for objective in objectives:
                    _merge(best[objective.name], objective, acts, kept, size, k)
    finally:
        module.to(home)
    if not read:
        raise FeatscopeError(f"none of the {len(paths)} image files under {str(folder)!r} "
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
