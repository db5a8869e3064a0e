"""The unit commands end to end on the embedded model (tiny renders), and the gallery site:
every link resolves, a rerun resumes, and a real browser can walk index -> layer -> unit."""

import html
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont
from skimage import data
from typer.testing import CliRunner

import featscope as fs
import featscope.cli.gallery as gallery_cli
from featscope.analysis import Example, Examples, read_naturals, trace_routes
from featscope.cli.app import app
from featscope.drawing.grid import label_height
from featscope.files.images import load_folder, load_image
from featscope.views.gallery import ANOTHER_ROUTE, BADGE

from .test_cli import assert_clear_error, featscope
from .test_routes import IDENTITY, Routed, smooth_images

TINY = ["--steps", "4", "--size", "64"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Sample photos that scikit-image ships, plus one file that is not an image."""
    folder = tmp_path_factory.mktemp("images")
    (folder / "more").mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    Image.fromarray(data.astronaut()).save(folder / "more" / "astronaut.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def gallery_args(images: Path, out: Path) -> list[str]:
    return ["gallery", "--layers", "_blocks.2,_blocks.8", "--per-layer", "2", "--classes",
            "goldfinch", "--images", str(images), "--top-k", "2", "--batch-size", "3",
            "--judge", "efficientnet_lite1", *TINY, "--out", str(out)]


@pytest.fixture(scope="module")
def site(tmp_path_factory, images) -> Path:
    out = tmp_path_factory.mktemp("gallery")
    run = featscope(*gallery_args(images, out))
    assert run.returncode == 0, run.stderr
    assert "skipped unreadable image" in run.stderr and "4 images read, 1 skipped" in run.stderr
    return out


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for key, value in attrs if key in ("href", "src") and value]


def local_links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return [link for link in parser.links if not link.startswith(("data:", "#"))]


def test_every_gallery_link_resolves_to_a_file(site):
    pages = sorted(site.rglob("*.html"))
    assert {p.relative_to(site).as_posix() for p in pages} >= {
        "index.html", "layers/_blocks.2.html", "layers/_blocks.8.html", "layers/output.html",
        "units/_blocks.2/0.html", "units/_blocks.2/1.html", "units/_blocks.8/0.html",
        "units/_blocks.8/1.html", "units/output/goldfinch.html"}
    for page in pages:
        links = local_links(page)
        assert links, f"{page} links nowhere"
        for link in links:
            assert "://" not in link, f"{page} loads an external asset {link}"
            assert (page.parent / unquote(link)).is_file(), f"{page}: broken link {link}"
    unit = html.unescape((site / "units" / "_blocks.8" / "1.html").read_text())
    # Each unit has its own seed, so the command renders it alone.
    for expected in ("featscope render _blocks.8:1 --steps 4", "<svg", "Dataset examples",
                     "best natural image", "\"steps\": 4"):
        assert expected in unit
    assert len([link for link in local_links(site / "units/_blocks.8/1.html")
                if "examples/" in link]) == 4


def test_gallery_overview_has_a_row_per_layer_and_no_empty_columns(site):
    font = ImageFont.load_default(size=112 // 8)
    title = int(max(font.getlength(name) for name in ("_blocks.2", "_blocks.8"))) + 2 * 2 + 4
    pitch = 112 + label_height(112) + 2
    assert Image.open(site / "overview.png").size == (title + 2 * (112 + 2) + 2, 2 * pitch + 2)


def test_gallery_summary_and_resume(site, images):
    summary = json.loads((site / "summary.json").read_text())
    assert [r["target"] for r in summary["results"]] == [
        "_blocks.2:0", "_blocks.2:1", "_blocks.8:0", "_blocks.8:1", "logit:goldfinch"]
    assert summary["dataset"]["images"] == 4 and len(summary["dataset"]["skipped"]) == 1
    for row in summary["results"]:
        assert len(row["examples"]) == 2 and (site / row["image"]).is_file()
        best = row["examples"][0]["activation"]
        if best > 0:
            assert row["ratio_to_best_image"] == pytest.approx(row["objective"] / best)
    rerun = featscope(*gallery_args(images, site))
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed 5 of 5 units" in rerun.stderr and "rendering 0" in rerun.stderr
    assert "4 images read, 1 skipped (from the cache)" in rerun.stderr
    assert json.loads((site / "summary.json").read_text())["results"] == summary["results"]


def test_gallery_measures_its_units_as_evaluate_does(site, tmp_path):
    rows = json.loads((site / "summary.json").read_text())["results"]
    for row in rows:  # robustness for every unit; the route check against the 4 images
        assert 0 < row["metrics"]["robustness"] < 5 and row["route"]["layers"]
        assert row["metrics"]["route_agreement"] == row["route"]["agreement"]
    *units, goldfinch = rows
    views = [f"top{k}_{v}" for k in (1, 5) for v in ("full", "64px", "48px")]
    assert all(isinstance(goldfinch["metrics"][v], bool) for v in views)
    assert all(unit["metrics"][v] is None for unit in units for v in views)  # not classes
    # `featscope evaluate` on a copy of the folder finds the same values.
    copy = tmp_path / "copy"
    shutil.copytree(site, copy)
    run = featscope("evaluate", str(copy), "--judge", "efficientnet_lite1")
    assert run.returncode == 0, run.stderr
    evaluated = json.loads((copy / "summary.json").read_text())["results"]
    for row, again in zip(rows, evaluated, strict=True):
        for name in ["robustness", *views]:
            assert row["metrics"][name] == again["metrics"][name], (row["target"], name)
    # The pages show them: robustness on every unit page, the judge on the class's pages.
    for page in (site / "units").rglob("*.html"):
        assert "<td class=\"muted\">robustness</td>" in page.read_text(), page
    shown = html.unescape((site / "units" / "output" / "goldfinch.html").read_text())
    top1 = goldfinch["metrics"]["top1_full"]
    expected = "top-1" if top1 else "top-5" if goldfinch["metrics"]["top5_full"] else "missed"
    assert f"judged by efficientnet_lite1</td><td>full size: {expected} · 64 px: " in shown
    layer = html.unescape((site / "layers" / "output.html").read_text())
    assert f"Judged by efficientnet_lite1, another classifier: its top-1 is the class for " \
           f"full size {int(top1)} · 64 px " in layer and " of 1 images" in layer
    assert "Judged by" not in (site / "layers" / "_blocks.2.html").read_text()


def test_sheet_grid_and_the_stored_command_reproduces_the_image(tmp_path, images):
    out = tmp_path / "sheet"
    run = featscope("sheet", "_blocks.3", "--units", "0,5,7,2,9", "--columns", "3",
                    "--batch-size", "2", "--images", str(images), "--top-k", "3", *TINY,
                    "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["units"] == [0, 5, 7, 2, 9] and len(summary["results"]) == 5
    strip = max(11, round(64 * 0.11))
    assert Image.open(out / "sheet.png").size == (3 * 64 + 4 * 2, 2 * (64 + strip) + 3 * 2)
    assert Image.open(out / "examples.png").size == (4 * 112 + 5 * 2,
                                                     5 * (112 + 12) + 6 * 2)
    for row in summary["results"]:
        assert (out / row["image"]).is_file() and len(row["examples"]) == 3
    # The command stored for unit 2 (batched with unit 7) gives the same image again, alone:
    # the same 8-bit values, but where the float drift between batch sizes (below 1e-6, as
    # in test_architecture) crosses a rounding step; other settings would change them all.
    row = summary["results"][3]
    args = row["reproduce"].split()
    assert args[:3] == ["featscope", "render", "_blocks.3:2"]
    again = featscope(*args[1:-2], "--quiet", "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    alone = np.asarray(Image.open(tmp_path / "again" / "_blocks.3-2.png"), dtype=int)
    batched = np.asarray(Image.open(out / row["image"]), dtype=int)
    assert alone.shape == batched.shape
    assert np.abs(alone - batched).max() <= 1 and (alone != batched).sum() <= 3


def test_classes_sheet_is_labelled_with_names_and_probabilities(tmp_path, images):
    run = featscope("classes", "--classes", "1,goldfinch", "--images", str(images), "--top-k",
                    "2", *TINY, "--quiet", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(c["index"], c["name"]) for c in summary["classes"]] == [(1, "goldfish"),
                                                                    (11, "goldfinch")]
    assert all(0 < c["probability"] < 1 for c in summary["classes"])
    assert Image.open(tmp_path / "classes.png").size[0] == 2 * 64 + 3 * 2
    # Class logits have no map: the examples are whole images, beside each visualization.
    assert all(r["examples"][0]["box"] == [0, 0, 224, 224] for r in summary["results"])
    assert Image.open(tmp_path / "examples.png").size == (3 * 112 + 4 * 2, 2 * (112 + 12) + 3 * 2)


@pytest.mark.parametrize("args, fragments", [
    (["sheet", "_blocks.8", "--units", "3,200"], ["unit 200 is out of range", "0..111"]),
    (["overview", "--layers", "_blocks.2,_blocks.99"], ["unknown layer '_blocks.99'"]),
    (["gallery", "--images", "/no/such/folder"], ["is not a folder"]),
    (["gallery", "--per-layer", "1", "--judge", "efficientnet_lite1"],
     ["--judge measures class targets", "there are none"]),
    (["gallery", "--classes", "goldfinch", "--judge", "nosuchmodel"],
     ["unknown model 'nosuchmodel'", "Valid: efficientnet_lite0"]),
])
def test_unit_commands_give_clear_errors(tmp_path, args, fragments):
    assert_clear_error(featscope(*args, "--out", str(tmp_path)), *fragments)


def routed_units() -> Routed:
    """A ``--model`` factory: test_routes' fooled model, except that its unit 1 does not read
    the stripe detector. A search for unit 0 follows the stripes, a route no natural image
    takes; one for unit 1 follows the natural features, as its top natural images do."""
    model = Routed(fooled=True)
    with torch.no_grad():
        model.unit.weight[1, 8:] = 0.0
    return model


ROUTED = ["gallery", "--model", "tests.test_gallery:routed_units", "--layers", "unit",
          "--per-layer", "2"]


def smooth_photos(folder: Path, count: int) -> Path:
    """``count`` smooth random 32 px images (test_routes' natural images) as PNG files."""
    folder.mkdir()
    for i, image in enumerate(smooth_images(count, seed=1)):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i:02d}.png")
    return folder


def test_gallery_shows_the_route_check_and_flags_only_the_unit_that_leaves_it(tmp_path):
    photos, out = smooth_photos(tmp_path / "photos", 24), tmp_path / "gallery"
    run = featscope(*ROUTED, "--images", str(photos), "--top-k", "3", "--steps", "128",
                    "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert ("route check: 1 of 2 visualizations travel another route than their unit's top "
            "natural images (unit:0)") in run.stderr
    # The same routes as trace_routes on the rendered images and the natural images gives.
    rows = json.loads((out / "summary.json").read_text())["results"]
    model = fs.LoadedModel(routed_units(), "routed", (3, 32, 32), IDENTITY)
    fooled, honest = trace_routes(model, [fs.channel("unit", 0), fs.channel("unit", 1)],
                                  torch.stack([load_image(out / row["image"]) for row in rows]),
                                  load_folder(photos))
    assert fooled.flagged and not honest.flagged  # the premise
    pages = [html.unescape((out / "units" / "unit" / f"{k}.html").read_text()) for k in (0, 1)]
    for page, route in zip(pages, (fooled, honest)):
        assert "Route check" in page and f"agreement {route.agreement:.2f}" in page
        assert "under random transforms" in page  # beside the activation on the image itself
        assert 'aria-label="similarity to the top natural images, layer by layer"' in page
        for layer in ("stripes", "stem", "natural", "hidden"):
            assert f"<tr><td>{layer}</td>" in page
    assert f"This visualization {ANOTHER_ROUTE}" in pages[0] and 'class="flag"' in pages[0]
    assert ANOTHER_ROUTE not in pages[1] and 'class="flag"' not in pages[1]
    assert "Travels with its top natural images" in pages[1]
    layer = html.unescape((out / "layers" / "unit.html").read_text())
    cells = layer.split('<a class="cell')[1:]
    assert cells[0].startswith(' flagged"') and BADGE in cells[0]
    assert cells[1].startswith('"') and BADGE not in cells[1]
    assert "1 of 2 checked units flagged" in layer


def test_gallery_without_enough_natural_images_has_no_route_check(tmp_path):
    photos = smooth_photos(tmp_path / "photos", 3)
    for extra, note in ([], None), (["--images", str(photos)], (
            "route check skipped: it needs at least 4 natural images in --images (found 3)")):
        out = tmp_path / f"gallery{len(extra)}"
        run = featscope(*ROUTED, *extra, "--steps", "4", "--out", str(out))
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        assert (note in run.stderr) if note else "route check" not in run.stderr
        for page in [out / "layers" / "unit.html", *(out / "units" / "unit").glob("*.html")]:
            text = page.read_text()
            assert "Route check" not in text and BADGE not in text, page
        assert ("Dataset examples" in (out / "units" / "unit" / "0.html").read_text()) == \
            bool(extra)


def test_measuring_in_chunks_gives_the_same_values(tmp_path, monkeypatch):
    photos = smooth_photos(tmp_path / "photos", 12)
    runs, reads = {}, []
    # The natural images pass through the model once for every unit, not once per chunk.
    monkeypatch.setattr(gallery_cli, "read_naturals",
                        lambda *args: reads.append(args) or read_naturals(*args))
    for chunk in (256, 1):  # every unit at once; one unit at a time
        monkeypatch.setattr(gallery_cli, "MEASURE_CHUNK", chunk)
        out = tmp_path / f"chunk{chunk}"
        result = CliRunner().invoke(app, [*ROUTED, "--images", str(photos), "--steps", "8",
                                          "--quiet", "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        runs[chunk] = json.loads((out / "summary.json").read_text())["results"]
    assert len(reads) == 2 and all(len(targets) == 2 for _, targets, _ in reads)
    for whole, alone in zip(runs[256], runs[1], strict=True):
        assert whole["metrics"] == alone["metrics"] and whole["route"] == alone["route"]
        assert whole["route"] is not None and whole["metrics"]["robustness"] is not None


def test_route_check_samples_a_large_folder_keeping_every_units_examples(tmp_path,
                                                                           monkeypatch):
    photos = smooth_photos(tmp_path / "photos", 24)
    (photos / "broken.png").write_bytes(b"not a png")
    monkeypatch.setattr(gallery_cli, "ROUTE_IMAGES", 4)
    files = sorted(photos.glob("*.png"))
    found = Examples({"unit:0": [Example(str(files[5]), 1.0, (0, 0, 32, 32))],
                      "unit:1": [Example(str(files[7]), 1.0, (0, 0, 32, 32))]}, 24,
                     [(str(photos / "broken.png"), "UnidentifiedImageError")])
    job = SimpleNamespace(found=found, examples=SimpleNamespace(images=photos))
    paths, readable = gallery_cli._route_images(job)
    assert readable == 24  # the unreadable file left out
    # 4 spread from the first to the last (0, 8, 15, 23) and the two units' examples.
    assert [p.name for p in paths] == ["00.png", "05.png", "07.png", "08.png", "15.png",
                                       "23.png"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_browser_walks_index_layer_unit(site, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        def images_loaded() -> list:
            driver.execute_script("for (const i of document.images) i.scrollIntoView();"
                                  "window.scrollTo(0, 0);")
            WebDriverWait(driver, 20).until(lambda d: d.execute_script(
                "return Array.from(document.images).every(i => i.complete)"))
            sizes = driver.execute_script(
                "return Array.from(document.images).map(i => [i.src, i.naturalWidth])")
            assert sizes and all(width > 0 for _, width in sizes), sizes
            return sizes

        driver.get((site / "index.html").as_uri())
        images_loaded()
        driver.find_element(By.LINK_TEXT, "_blocks.8").click()
        assert urlparse(driver.current_url).path.endswith("/layers/_blocks.8.html")
        assert len(images_loaded()) == 2
        driver.find_element(By.CSS_SELECTOR, ".grid a.cell").click()
        assert urlparse(driver.current_url).path.endswith("/units/_blocks.8/0.html")
        assert len(images_loaded()) == 1 + 2 * 2  # the visualization and two examples (image, crop)
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
        WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/units/_blocks.8/1.html"))
        images_loaded()
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "gallery-unit.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
