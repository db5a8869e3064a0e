"""The gallery writer alone: pagination, lazy thumbnails, keyboard links and the route check,
without rendering."""

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import featscope.views.gallery as gallery
from featscope.analysis import Route
from featscope.views.gallery import (
    ANOTHER_ROUTE,
    BADGE,
    LayerEntry,
    Measurement,
    UnitEntry,
    curve_svg,
    route_svg,
    write_gallery,
)

from .test_gallery import local_links


def unit(folder: Path, name: str, value: float) -> UnitEntry:
    image = folder / f"{name}.png"
    Image.new("RGB", (16, 16), (int(value) % 256, 0, 0)).save(image)
    return UnitEntry(name.split(":")[-1], name, image, objective=value, objective_initial=0.0,
                     history=[0.0, value / 2, value], command=f"featscope render {name}")


def test_layers_are_paginated_with_lazy_thumbnails_and_keyboard_links(tmp_path, monkeypatch):
    monkeypatch.setattr(gallery, "PAGE_SIZE", 10)
    (tmp_path / "img").mkdir()
    layers = [LayerEntry("conv", "Conv2d, output (25, 8, 8)",
                         [unit(tmp_path / "img", f"conv:{k}", k) for k in range(25)]),
              LayerEntry("fc", "Linear, output (3,)",
                         [unit(tmp_path / "img", f"fc:{k}", k) for k in range(3)])]
    out = tmp_path / "site"
    index = write_gallery(out, layers, title="test", settings={"steps": 3})
    pages = sorted(p.relative_to(out).as_posix() for p in (out / "layers").glob("*.html"))
    assert pages == ["layers/conv-p2.html", "layers/conv-p3.html", "layers/conv.html",
                     "layers/fc.html"]
    second = (out / "layers" / "conv-p2.html").read_text()
    assert second.count('<a class="cell"') == 10 and second.count('loading="lazy"') == 10
    assert 'href="../units/conv/10.html"' in second and 'href="../units/conv/9.html"' not in second
    assert 'data-keys="ArrowLeft"' in second and 'data-keys="ArrowRight"' in second
    last = (out / "units" / "conv" / "24.html").read_text()
    assert 'href="../../layers/conv-p3.html" data-keys="ArrowUp"' in last
    assert 'href="../fc/0.html" data-keys="ArrowRight"' in last  # walks on into the next layer
    assert len(list((out / "units").rglob("*.html"))) == 28
    for page in [index, *out.rglob("*.html")]:
        for link in local_links(page):
            assert (page.parent / link).is_file(), f"{page}: broken link {link}"


def test_curve_svg_scales_to_the_values():
    svg = curve_svg([0.0, 5.0, 10.0], reference=2.5, width=480, height=160)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    # 28 px padding; x spans 28..452 over the steps, y spans 132 (lowest) .. 28 (highest).
    assert 'points="28.0,132.0 240.0,80.0 452.0,28.0"' in svg
    assert 'y1="106.0"' in svg and "best natural image" in svg


@pytest.mark.parametrize("history", [[1.0], [2.0, 2.0]])
def test_curve_svg_handles_flat_and_single_step_curves(history):
    assert "NaN" not in curve_svg(history) and "inf" not in curve_svg(history)


def route(last: float) -> Route:
    """A route over 8 layers (two of them near the unit) whose visualization is at ``last``
    (0: like unrelated images, 1: like the top images) in the last two and at 1 before;
    ``last`` None: the top images are no more alike than unrelated ones there."""
    top = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    unrelated = torch.full((8,), 0.1)
    visualization = top.clone()
    if last is None:
        top[-2:] = unrelated[-2:]
    else:
        visualization[-2:] = unrelated[-2:] + last * (top[-2:] - unrelated[-2:])
    return Route(("<stem>", *(f"_blocks.{i}" for i in range(7))), visualization, top, unrelated)


def test_unit_and_layer_pages_show_the_route_check(tmp_path):
    (tmp_path / "img").mkdir()
    units = [unit(tmp_path / "img", f"conv:{k}", k + 1) for k in range(4)]
    for entry, agreement in zip(units, (0.2, 0.9, None)):
        entry.measured = Measurement({"robustness": 0.8125}, route(agreement))
    units[0].objective_transformed = 0.5
    out = tmp_path / "site"
    write_gallery(out, [LayerEntry("conv", "Conv2d, output (4, 8, 8)", units)], title="test",
                  settings={})
    pages = [(out / "units" / "conv" / f"{k}.html").read_text() for k in range(4)]
    assert all("Route check" in page for page in pages[:3]) and "Route check" not in pages[3]
    assert [f"This visualization {ANOTHER_ROUTE}" in page for page in pages] == [
        True, False, False, False]
    assert "agreement 0.20, below 0.5" in pages[0] and "agreement 0.90 (flagged below 0.5)" in \
        pages[1] and "No verdict" in pages[2] and "no verdict" in pages[2]
    # Layer names are escaped, in the plot and in the table.
    assert "<stem>" not in pages[0] and "<tr><td>&lt;stem&gt;</td>" in pages[0]
    assert "under random transforms</td><td>0.5</td>" in pages[0]
    assert "under random transforms" not in pages[1]
    assert '<td class="muted">robustness</td><td>0.81 of the activation under small shifts' \
        in pages[0]
    assert "robustness" not in pages[3]  # not measured
    layer = (out / "layers" / "conv.html").read_text()
    assert layer.count(BADGE) == 2  # the flagged unit's cell and the line that explains it
    assert re.search(r'<a class="cell flagged" href="../units/conv/0.html">.*?' + BADGE, layer)
    assert layer.count('class="cell flagged"') == 1
    assert "1 of 3 checked units flagged" in layer
    for page in [out / "index.html", *out.rglob("*.html")]:
        for link in local_links(page):
            assert (page.parent / link).is_file(), f"{page}: broken link {link}"


def test_class_pages_say_where_the_judge_ranks_the_class(tmp_path):
    (tmp_path / "img").mkdir()
    ranks = [(True, True, False, True, True, False), (False, True, False, False, True, True)]
    units = [unit(tmp_path / "img", f"logit:{k}", 1.0) for k in range(3)]
    for entry, (full1, small1, tiny1, full5, small5, tiny5) in zip(units, ranks):
        entry.measured = Measurement({"top1_full": full1, "top1_64px": small1,
                                      "top1_48px": tiny1, "top5_full": full5,
                                      "top5_64px": small5, "top5_48px": tiny5}, None, "judge-net")
    out = tmp_path / "site"
    write_gallery(out, [LayerEntry("", "class logits", units)], title="test", settings={})
    pages = [(out / "units" / "output" / f"{k}.html").read_text() for k in range(3)]
    assert ("judged by judge-net</td><td>full size: top-1 · 64 px: top-1 · 48 px: missed"
            in pages[0])
    assert ("judged by judge-net</td><td>full size: missed · 64 px: top-1 · 48 px: top-5"
            in pages[1])
    assert "judged by" not in pages[2]  # not judged
    layer = (out / "layers" / "output.html").read_text()
    assert ("Judged by judge-net, another classifier: its top-1 is the class for full size 1 · "
            "64 px 2 · 48 px 0 of 2 images.") in layer


def test_route_svg_plots_every_layer_and_shades_those_near_the_unit():
    svg = route_svg(route(0.2), width=480, height=170)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "nan" not in svg.lower()
    lines = re.findall(r'<polyline [^>]*points="([^"]*)"', svg)
    assert len(lines) == 3 and all(len(points.split()) == 8 for points in lines)
    # 8 layers over x 28..452 (a step of 424 / 7); the last two shaded, from half a step before.
    shade = re.search(r'<rect x="([\d.]+)" y="28" width="([\d.]+)"', svg)
    assert float(shade[1]) == pytest.approx(28 + 424 * 5.5 / 7, abs=0.1)
    assert float(shade[1]) + float(shade[2]) == pytest.approx(452, abs=0.1)
    one = route_svg(Route(("a",), torch.tensor([0.5]), torch.tensor([0.6]),
                          torch.tensor([0.1])))
    assert "nan" not in one.lower() and 'cx="240.0"' in one  # a single layer: in the middle
