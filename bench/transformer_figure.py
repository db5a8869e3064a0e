"""The README's transformer figure: what the tiny ViT of bench/shapes.py learned.

    python -m bench.transformer_figure            # writes docs/transformer.png

Row 1: its eight classes, each labelled "class, the ViT's probability for it / the class the
CNN judge of bench/shapes.py sees in it". Rows 2-3: MLP hidden units of blocks 1 and 2
(``blocks.N.mlp.act``, the layer Ghiasi et al. 2022 found most interpretable; the four of
each block whose activation differs most between classes of natural shapes), each beside
the natural shape that excites it most. Everything is rendered with the default recipe (for
a transformer: Plug-In Inversion, ``pii``), 256 steps, seed 0, on the CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

import featscope as fs
from bench import shapes
from featscope.analysis import metrics
from featscope.files import to_pil
from featscope.objectives import LayerObjective, bind_objectives

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCKS, PER_BLOCK = (1, 2), 4  # MLP hidden units shown: the most class-selective of each block
CELL = 128
# Class names short enough for a label under a 128 px cell.
SHORT = ("disc", "square", "triangle", "cross", "ring", "h-stripes", "v-stripes", "checker")


def selective_units(vit: fs.LoadedModel, images: torch.Tensor, labels: torch.Tensor,
                    block: int, count: int) -> list[int]:
    """The ``count`` MLP hidden units of ``block`` whose mean activation over the patch tokens
    differs most between the classes of ``images`` (N, 3, H, W)."""
    layer = f"blocks.{block}.mlp.act"
    [reader] = bind_objectives([LayerObjective(layer)], vit.module, vit.input_shape)
    with fs.Probe(vit.module, [layer]) as probe, torch.no_grad():
        act = reader.feature_map(probe.run(vit.normalization(images))[layer])  # (N, C, 8, 8)
    pooled = act.flatten(2).mean(2)  # (N, C)
    by_class = torch.stack([pooled[labels == k].mean(0) for k in range(len(shapes.CLASSES))])
    spread = by_class.std(0) / pooled.std(0).clamp_min(1e-6)
    return spread.topk(count).indices.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--out", type=Path, default=DOCS / "transformer.png")
    args = parser.parse_args()
    norm = fs.Normalization([0.5] * 3, [0.5] * 3)
    vit = fs.LoadedModel(shapes.make(), "shapes-vit", (3, 32, 32), norm, shapes.CLASSES)
    judge = shapes.judge()
    classes = fs.render(vit, [fs.class_logit(k) for k in range(len(shapes.CLASSES))],
                        steps=args.steps, seed=0, device="cpu")
    with torch.no_grad():
        own = torch.softmax(vit.module(norm(classes.images)), 1)
        seen = judge(norm(classes.images)).argmax(1)
    labels = [f"{SHORT[k]} {own[k, k]:.0%} / {SHORT[int(seen[k])]}"
              for k in range(len(shapes.CLASSES))]
    naturals, kinds = shapes.shapes(512, torch.Generator().manual_seed(7))
    units = [fs.channel(f"blocks.{b}.mlp.act", k) for b in BLOCKS
             for k in selective_units(vit, naturals, kinds, b, PER_BLOCK)]
    drawn = fs.render(vit, units, steps=args.steps, seed=0, device="cpu")
    values = torch.stack([metrics.objective_values(vit, [u] * len(naturals), naturals)
                          for u in units])  # (units, naturals)
    best = values.argmax(1)
    pictures = list(classes.images)
    for i, unit in enumerate(units):
        pictures += [drawn.images[i], naturals[best[i]]]
        labels += [f"{unit.name.replace('.mlp.act', ' mlp')} {drawn.final[i]:.2g}",
                   f"best shape {values[i, best[i]]:.2g}"]
    # Each 32 px image enlarged 4× pixel for pixel: its own pixels, and a small file.
    big = [to_pil(p).convert("RGB").resize((CELL, CELL), Image.Resampling.NEAREST)
           for p in pictures]
    fs.grid(big, labels, columns=8, cell=CELL).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
