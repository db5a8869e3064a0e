"""The results store at an fsspec URL (memory://, file://) and what the atlas adds to it:
units written whole and verified, copied into a local store, and a journal that counts how
often each unit was stored. Dataset examples scanned in shards merge into one scan's lists;
a unit rendered alone from a request (as a worker renders it) keeps its seed."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import featscope as fs
from featscope.analysis.examples import (
    Example,
    Examples,
    merge_examples,
    scan_examples,
    top_examples,
)
from featscope.atlas.tasks import shards
from featscope.errors import FeatscopeError
from featscope.files.images import find_images
from featscope.inputs import Image as ImageKind
from featscope.models import identity_normalization
from featscope.rendering import recipe
from featscope.rendering.results import UnitResult
from featscope.store import ResultStore

from .models import ConvNet

fsspec = pytest.importorskip("fsspec")  # installed with the atlas extra (CI's test extra)

SETTINGS = {"model": "convnet", "seed": 0}


def result(label: str, seed: int = 0) -> UnitResult:
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return UnitResult(label, label, 0, seed, "featscope", recipe("featscope"), image, 0.1, 0.9,
                      torch.tensor([0.1, 0.5, 0.9]), False, False, 0.01, [label])


@pytest.fixture
def memory_url():
    url = f"memory://featscope-tests/{torch.randint(0, 10**9, ()).item()}"
    yield url
    fs_, path = fsspec.core.url_to_fs(url)
    if fs_.exists(path):
        fs_.rm(path, recursive=True)


def test_a_store_at_a_url_keeps_whole_units_and_verifies_them(memory_url):
    store = ResultStore(memory_url, SETTINGS, ImageKind(), journal="w1")
    unit = store.put(result("conv2:3"))
    assert unit.files["image"] == f"cache/{store.key}/{store.stem('conv2:3')}.png"
    again = ResultStore(memory_url, SETTINGS, ImageKind()).get("conv2:3")
    assert again == unit
    assert ResultStore(memory_url, {**SETTINGS, "seed": 1}, ImageKind()).get("conv2:3") is None
    # A damaged image makes the unit missing, not wrong.
    store.location.write_bytes(unit.files["image"], b"\x89PNG broken")
    assert store.get("conv2:3") is None
    # A record without its files (a writer that died in between) is not a unit either.
    fs_, base = fsspec.core.url_to_fs(memory_url)
    fs_.rm(f"{base}/{unit.files['image']}")
    assert store.get("conv2:3") is None


def test_units_at_a_url_are_copied_into_a_local_store(memory_url, tmp_path):
    remote = ResultStore(memory_url, SETTINGS, ImageKind(), journal="w1")
    remote.put(result("conv2:1", seed=1))
    local = ResultStore(tmp_path, SETTINGS, ImageKind())
    assert local.get("conv2:1") is None and local.copy_from(remote, "conv2:7") is None
    copied = local.copy_from(remote, "conv2:1")
    assert local.get("conv2:1") == copied
    with Image.open(tmp_path / copied.files["image"]) as picture:
        assert picture.size == (8, 8)
    with pytest.raises(ValueError):
        local.copy_from(ResultStore(memory_url, {"other": 1}, ImageKind()), "conv2:1")


@pytest.mark.parametrize("scheme", ["memory", "file", "local folder"])
def test_the_journal_counts_every_store_of_a_unit(scheme, memory_url, tmp_path):
    root = {"memory": memory_url, "file": (tmp_path / "store").as_uri(),
            "local folder": tmp_path / "store"}[scheme]
    first = ResultStore(root, SETTINGS, ImageKind(), journal="host-1")
    second = ResultStore(root, SETTINGS, ImageKind(), journal="host-2")
    first.put(result("a"))
    first.put(result("b"))
    second.put(result("b"))  # stored twice: the count says so
    ResultStore(root, SETTINGS, ImageKind()).put(result("c"))  # not journaled
    assert first.puts() == {"a": 1, "b": 2}
    assert first.puts(["a", "c"]) == {"a": 1}
    assert first.puts(replacing=True) == {"b": 1}  # the second write of b replaced the first
    assert first.get("b") is not None and first.get("c") is not None
    if scheme == "file":  # written through fsspec, renamed into place: no scratch files left
        names = [p.name for p in (tmp_path / "store").rglob("*")]
        assert not [n for n in names if n.endswith(".tmp")], names


def test_an_unknown_url_scheme_is_a_clear_error():
    with pytest.raises(FeatscopeError, match="cannot open the store"):
        ResultStore("nosuchscheme://bucket/atlas", SETTINGS, ImageKind())


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    generator = torch.Generator().manual_seed(3)
    for i in range(7):
        array = (torch.rand(20, 24, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(array).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_examples_scanned_in_shards_merge_to_one_scans_lists(photos):
    torch.manual_seed(1)
    model = fs.LoadedModel(ConvNet(), "convnet", (3, 16, 16), identity_normalization(3))
    objectives = [fs.channel("conv2", k) for k in range(3)] + [fs.channel("conv1", 0, pool="max")]
    whole = top_examples(model, objectives, photos, k=3, progress=False)
    paths = [str(p) for p in find_images(photos)]
    parts = [scan_examples(model, objectives, task.paths, k=3, progress=False)
             for task in shards(paths, 3)]
    assert len(parts) == 3
    merged = merge_examples(parts, 3, photos)
    assert merged.images == whole.images == 7 and len(merged.skipped) == 1
    for objective in objectives:
        ours, theirs = merged.by_target[objective.name], whole.by_target[objective.name]
        assert [e.path for e in ours] == [e.path for e in theirs]
        assert [e.box for e in ours] == [e.box for e in theirs]
        assert [e.activation for e in ours] == pytest.approx([e.activation for e in theirs],
                                                             rel=1e-5)


def test_merging_keeps_the_earlier_file_first_on_ties_and_needs_one_readable_image():
    def part(*found):
        return Examples({"t": [Example(p, a, (0, 0, 1, 1)) for p, a in found]}, len(found), [])

    merged = merge_examples([part(("a", 1.0), ("b", 0.5)), part(("c", 1.0), ("d", 2.0))], 3, ".")
    assert [e.path for e in merged.by_target["t"]] == ["d", "a", "c"]
    with pytest.raises(FeatscopeError, match="could be read"):
        merge_examples([Examples({"t": []}, 0, [("x.png", "broken")])], 3, "photos")
    assert json.loads(json.dumps(merged.to_json()))["images"] == 4


def test_a_unit_rendered_alone_from_a_request_keeps_its_seed_and_image():
    """What a resumed run or an atlas worker does: render some units of a request (``only``);
    copies count the whole request, so the second copy is not re-seeded as a first one."""
    torch.manual_seed(1)
    model = fs.LoadedModel(ConvNet(), "convnet", (3, 16, 16), identity_normalization(3))
    objectives = [fs.channel("conv2", 1)] * 2 + [fs.channel("conv2", 2)]
    options = {"steps": 3, "seed": 0, "device": "cpu", "labels": ["a", "b", "c"]}
    whole = fs.render(model, objectives, **options)
    alone = fs.render(model, objectives, only=["b"], **options)
    assert alone.labels == ["b"] and alone.units[0].copy == 1
    assert alone.units[0].seed == whole.units[1].seed != whole.units[0].seed
    # The same image, up to float rounding (the batch differs: 1 unit against 3).
    assert torch.allclose(alone.units[0].image, whole.units[1].image, atol=2e-3)
    assert not torch.allclose(alone.units[0].image, whole.units[0].image, atol=2e-3)
