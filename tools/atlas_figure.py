"""The README's atlas figure: every unit of some layers of a finished atlas, a grid per layer.

    featscope atlas --layers _blocks.2,_blocks.4 --steps 128 --size 160 --images PHOTOS --out out/atlas
    python -m tools.atlas_figure out/atlas docs/atlas.jpg     (from the repository root)

Reads the atlas's summary.json (its "layers" and each unit's image) and stacks one labelled
grid per layer, the units in order, each cell labelled with its unit and the activation its
image reaches.
"""

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from featscope.drawing.grid import grid
from featscope.store.summary import read_summary, resolve

CELL = 96  # px per unit
COLUMNS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas", type=Path, help="the atlas's --out folder")
    parser.add_argument("figure", type=Path, help="the PNG to write")
    args = parser.parse_args()
    summary = read_summary(args.atlas)
    rows = {r["target"]: r for r in summary["results"]}
    font = ImageFont.load_default(size=18)
    parts = []
    for layer, units in summary["layers"].items():
        cells, labels = [], []
        for k in units:
            row = rows.get(f"{layer}:{k}")
            if row is None or not row.get("image"):
                continue
            with Image.open(resolve(args.atlas, row["image"])) as picture:
                cells.append(picture.convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS))
            labels.append(f"{k} {row['objective']:.3g}")
        title = Image.new("RGB", (COLUMNS * (CELL + 2) + 2, 28), "white")
        ImageDraw.Draw(title).text((4, 4), f"{layer}: all {len(cells)} units", fill="black",
                                   font=font)
        parts += [title, grid(cells, labels, columns=COLUMNS)]
    width = max(p.width for p in parts)
    figure = Image.new("RGB", (width, sum(p.height for p in parts)), "white")
    top = 0
    for part in parts:
        figure.paste(part, (0, top))
        top += part.height
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    if args.figure.suffix.lower() == ".png":
        figure.quantize(colors=160).save(args.figure, optimize=True)
    else:
        figure.save(args.figure, quality=82, optimize=True)
    print(f"wrote {args.figure} {figure.size}")


if __name__ == "__main__":
    main()
