"""The gallery writer alone: pagination, lazy thumbnails and keyboard links, without rendering."""

from pathlib import Path

import pytest
from PIL import Image

import featscope.views.gallery as gallery
from featscope.views.gallery import LayerEntry, UnitEntry, curve_svg, write_gallery

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
