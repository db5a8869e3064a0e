"""Grids, overviews and the choice of units and layers."""

import pytest
import torch
from PIL import Image

import featscope as fs
from featscope import FeatscopeError
from featscope.drawing.grid import grid, label_height, overview, png_bytes
from featscope.engine.probing import LayerInfo
from featscope.views.selection import parse_units, spread_layers

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def solid(colour, side=40):
    return Image.new("RGB", (side, side), colour)


@pytest.mark.parametrize("spec, every, expected", [
    ("0:4", False, [0, 1, 2, 3]),
    ("3,17,2", False, [3, 17, 2]),
    (":3", False, [0, 1, 2]),
    ("18:", False, [18, 19]),
    ("0:500", False, list(range(20))),
    (None, False, list(range(16))),
    ("0:2", True, list(range(20))),
])
def test_parse_units(spec, every, expected):
    assert parse_units(spec, count=20, every=every, default=16) == expected


@pytest.mark.parametrize("spec, message", [
    ("3,x", "bad --units"), ("5:5", "selects no unit"), ("3,20", "unit 20 is out of range"),
])
def test_parse_units_errors(spec, message):
    with pytest.raises(FeatscopeError, match=message):
        parse_units(spec, count=20)


def test_grid_layout_cells_and_labels():
    side, margin, columns = 40, 2, 3
    picture = grid([solid(c) for c in COLOURS], [f"#{i}" for i in range(5)], columns=columns,
                   margin=margin)
    strip = label_height(side)
    assert picture.size == (3 * side + 4 * margin, 2 * (side + strip) + 3 * margin)
    for i, colour in enumerate(COLOURS):
        row, col = divmod(i, columns)
        left, top = margin + col * (side + margin), margin + row * (side + strip + margin)
        assert picture.getpixel((left + side // 2, top + side // 2)) == colour
        label = picture.crop((left, top + side, left + side, top + side + strip))
        assert label.convert("L").getextrema()[0] < 128, f"cell {i} has no label text"
    empty = picture.crop((margin + 2 * (side + margin), margin + side + strip + margin,
                          picture.width - margin, picture.height - margin))
    assert empty.getextrema() == ((255, 255),) * 3  # the sixth cell stays blank


def test_grid_of_tensor_images_and_resized_cells():
    images = torch.rand(10, 3, 24, 24)
    picture = grid(images, [str(i) for i in range(10)], columns=8, margin=1, cell=32)
    assert picture.size == (8 * 33 + 1, 2 * (32 + label_height(32) + 1) + 1)


def test_overview_rows_per_layer():
    rows = [(name, [solid(c, 20) for c in COLOURS[:n]], [str(i) for i in range(n)])
            for name, n in (("conv1", 2), ("block.3", 4))]
    picture = overview(rows, cell=30, margin=2, title_width=60)
    assert picture.size == (60 + 4 * 32 + 2, 2 * (30 + label_height(30) + 2) + 2)
    assert picture.getpixel((60 + 15, 2 + 15)) == COLOURS[0]


def test_spread_layers_prefers_blocks_from_low_to_high():
    infos = [LayerInfo("stem", "Conv2d", (8, 32, 32))]
    for b in range(10):
        infos += [LayerInfo(f"blocks.{b}.conv", "Conv2d", (8, 16, 16)),
                  LayerInfo(f"blocks.{b}", "Block", (8, 16, 16))]
    infos += [LayerInfo("blocks", "Sequential", (8, 16, 16)), LayerInfo("fc", "Linear", (10,)),
              LayerInfo("", "output", (10,))]
    assert spread_layers(infos, 4) == ["blocks.0", "blocks.3", "blocks.6", "blocks.9"]
    plain = [LayerInfo(f"{i}", "Conv2d", (4, 8, 8)) for i in range(3)]
    assert spread_layers(plain, 5) == ["0", "1", "2"]
    with pytest.raises(FeatscopeError, match="no layer with a 2-D feature map"):
        spread_layers([LayerInfo("fc", "Linear", (3,))], 2)


def test_render_result_displays_inline_in_jupyter():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    result = fs.render(model, [fs.channel("0", k) for k in range(3)], input_shape=(3, 16, 16),
                       steps=2)
    data = result._repr_png_()
    # Small inputs are shown enlarged (16 px x 6 = 96 px), nearest-neighbour: pixels stay sharp.
    enlarged = torch.nn.functional.interpolate(result.images, scale_factor=6, mode="nearest")
    assert data == png_bytes(grid(enlarged, [f"0:{k} {v:.3g}" for k, v in
                                             enumerate(result.final.tolist())]))
    assert data.startswith(b"\x89PNG")
    page = result._repr_html_()
    assert page.count("<img") == 3 and "0:2" in page and "<svg" in page
