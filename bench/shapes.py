"""Synthetic shapes, and two small models trained on them on a CPU: a transformer whose units
mean something (and a CNN to judge its visualizations), built without downloading anything.

    python bench/shapes.py          # train (or reuse) both and print their test accuracy
    featscope layers --model bench/shapes.py:make --input-shape 3x32x32

The data: 32 px images of one of eight shapes (disc, square, triangle, cross, ring,
horizontal stripes, vertical stripes, checkerboard), in a random colour, size and place, on
a random background colour with noise. The tiny ViT: timm's VisionTransformer, 4 px patches
(an 8×8 grid), a class token and 2 register tokens, width 64, depth 3, 2 heads, trained for
4000 steps of 64 images (about 10 minutes on one quiet CPU core). The judge: three
convolutions with batch norms, 1000 steps. Weights are cached in bench/results/ (training
is seeded: the same steps give the same models).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

CLASSES = ("disc", "square", "triangle", "cross", "ring", "horizontal stripes",
           "vertical stripes", "checkerboard")
SIDE = 32
CACHE = Path(__file__).resolve().parent / "results"


def shapes(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images (N, 3, 32, 32) in [0, 1] and their class labels (N,)."""
    labels = torch.randint(len(CLASSES), (count,), generator=generator)

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator)

    ys, xs = torch.meshgrid(torch.arange(SIDE) + 0.5, torch.arange(SIDE) + 0.5, indexing="ij")
    ys, xs = ys[None] / SIDE, xs[None] / SIDE  # (1, H, W) in (0, 1)
    cy, cx = (0.3 + 0.4 * u(count, 1, 1) for _ in range(2))
    size = 0.18 + 0.14 * u(count, 1, 1)
    dy, dx = ys - cy, xs - cx
    radius = torch.sqrt(dy ** 2 + dx ** 2)
    period = 0.15 + 0.15 * u(count, 1, 1)
    phase = u(count, 1, 1)
    masks = torch.stack([
        radius < size,  # disc
        (dy.abs() < size) & (dx.abs() < size),  # square
        (dy < size) & (dy > -size) & (dx.abs() < (dy + size) / 2),  # triangle, apex up
        ((dy.abs() < size / 3) & (dx.abs() < size)) | ((dx.abs() < size / 3) & (dy.abs() < size)),
        (radius < size) & (radius > size * 0.6),  # ring
        torch.frac(ys / period + phase) < 0.5,  # horizontal stripes
        torch.frac(xs / period + phase) < 0.5,  # vertical stripes
        (torch.frac(ys / period + phase) < 0.5) ^ (torch.frac(xs / period + phase) < 0.5),
    ], dim=1)  # (N, classes, H, W)
    mask = masks[torch.arange(count), labels].float()[:, None]
    foreground, background = u(count, 3, 1, 1), u(count, 3, 1, 1)
    # Keep the two colours apart, so that the shape is always visible.
    background = torch.where((foreground - background).abs().sum(1, keepdim=True) < 0.6,
                             1 - foreground, background)
    images = mask * foreground + (1 - mask) * background
    images = images + 0.05 * torch.randn(images.shape, generator=generator)
    return images.clamp(0, 1), labels


def vit() -> torch.nn.Module:
    """The tiny ViT, with random weights."""
    from timm.models.vision_transformer import VisionTransformer
    model = VisionTransformer(img_size=SIDE, patch_size=4, num_classes=len(CLASSES),
                              embed_dim=64, depth=3, num_heads=2, mlp_ratio=4.0, reg_tokens=2)
    return _described(model)


def cnn() -> torch.nn.Module:
    """The judge: a small convolutional network with batch norms, with random weights."""
    def stage(inputs: int, outputs: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(inputs, outputs, 3, padding=1), torch.nn.BatchNorm2d(outputs),
                torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
    model = torch.nn.Sequential(*stage(3, 24), *stage(24, 48), *stage(48, 64),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(64, len(CLASSES)))
    return _described(model)


def _described(model: torch.nn.Module) -> torch.nn.Module:
    """What featscope reads from a model: its input normalization, size and class names."""
    model.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                            "input_size": (3, SIDE, SIDE)}
    model.class_names = CLASSES
    return model


def train(model: torch.nn.Module, steps: int, seed: int = 0, batch: int = 64,
          lr: float = 2e-3) -> torch.nn.Module:
    """``steps`` of AdamW on fresh shapes (cosine schedule, label smoothing); seeded, so the
    same steps give the same model on the same software."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    start = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        images, labels = shapes(batch, generator)
        loss = F.cross_entropy(model((images - 0.5) / 0.5), labels, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"trained {type(model).__name__} for {steps} steps in "
          f"{time.perf_counter() - start:.0f} s, last loss {loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def accuracy(model: torch.nn.Module, count: int = 1024, seed: int = 1) -> float:
    images, labels = shapes(count, torch.Generator().manual_seed(seed))
    return float((model((images - 0.5) / 0.5).argmax(1) == labels).float().mean())


MODELS = {"vit": (vit, 4000), "cnn": (cnn, 1000)}  # name -> (architecture, training steps)


def trained(name: str) -> torch.nn.Module:
    """A trained model of ``MODELS`` (trained now and cached when no cached weights exist)."""
    build, steps = MODELS[name]
    model = build()
    path = CACHE / f"shapes_{name}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    train(model, steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def make() -> torch.nn.Module:
    """The trained tiny ViT (a factory for ``--model bench/shapes.py:make``)."""
    return trained("vit")


def judge() -> torch.nn.Module:
    """The trained CNN judge (``--model bench/shapes.py:judge``)."""
    return trained("cnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="ignore cached weights")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (on a shared machine one thread trains fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in MODELS:
        if args.retrain:
            (CACHE / f"shapes_{name}.pt").unlink(missing_ok=True)
        print(f"{name}: test accuracy on 1024 fresh images {accuracy(trained(name)):.1%} "
              f"({len(CLASSES)} classes, chance {1 / len(CLASSES):.1%})", flush=True)


if __name__ == "__main__":
    main()
