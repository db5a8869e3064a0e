"""Resumable rendering: an interrupted run keeps its finished batches; a rerun renders only
what is missing; other settings never reuse a result."""

import json

import pytest
import torch
from PIL import Image

import featscope as fs
import featscope.cache as cache_module
from featscope.cache import RenderCache, batches, cached_examples, render_cached
from featscope.analysis.examples import Example, Examples
from featscope.models import identity_normalization

from .models import ConvNet

OPTIONS = {"steps": 3, "seed": 0, "device": "cpu"}


@pytest.fixture
def model():
    torch.manual_seed(1)
    return fs.LoadedModel(ConvNet(), "convnet", (3, 16, 16), identity_normalization(3))


@pytest.fixture
def calls(monkeypatch):
    """Records the targets of every batch that is rendered."""
    batches = []
    real = cache_module.render_units

    def recording(model, objectives, **options):
        batches.append([o.name for o in objectives])
        return real(model, objectives, **options)

    monkeypatch.setattr(cache_module, "render_units", recording)
    return batches


def objectives():
    return [fs.channel("conv2", k) for k in range(6)]


def test_interrupted_run_resumes_with_only_the_missing_units(model, tmp_path, calls,
                                                             monkeypatch):
    settings = {"model": "convnet", "steps": 3, "seed": 0}
    recording = cache_module.render_units

    def interrupted(model, objectives, **options):
        if len(calls) == 1:  # Ctrl-C during the second batch
            raise KeyboardInterrupt
        return recording(model, objectives, **options)

    monkeypatch.setattr(cache_module, "render_units", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_cached(model, objectives(), RenderCache(tmp_path, settings), batch_size=2,
                      progress=False, render_options=OPTIONS)
    assert calls == [["conv2:0", "conv2:1"]]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2

    monkeypatch.setattr(cache_module, "render_units", recording)
    messages = []
    done = render_cached(model, objectives(), RenderCache(tmp_path, settings), batch_size=2,
                         progress=False, render_options=OPTIONS, log=messages.append)
    assert calls[1:] == [["conv2:2", "conv2:3"], ["conv2:4", "conv2:5"]]
    assert done.resumed == 2 and [u.target for u in done.units] == [f"conv2:{k}" for k in range(6)]
    assert messages and messages[0].startswith("resumed 2 of 6 units")
    assert all(len(u.history) == 3 and u.objective > u.objective_initial for u in done.units)

    again = render_cached(model, objectives(), RenderCache(tmp_path, settings), batch_size=2,
                          progress=False, render_options=OPTIONS)
    assert len(calls) == 3 and again.resumed == 6  # nothing rendered the third time
    assert [u.image for u in again.units] == [u.image for u in done.units]


def test_other_settings_render_again_and_partial_files_are_redone(model, tmp_path, calls):
    first = RenderCache(tmp_path, {"seed": 0})
    render_cached(model, objectives()[:2], first, progress=False, render_options=OPTIONS)
    other = RenderCache(tmp_path, {"seed": 1})
    assert other.folder != first.folder
    render_cached(model, objectives()[:2], other, progress=False,
                  render_options={**OPTIONS, "seed": 1})
    assert calls == [["conv2:0", "conv2:1"]] * 2

    # A JSON cut short (as a crash before the atomic rename never leaves) counts as missing.
    broken = next(first.folder.glob("*.json"))
    broken.write_text(broken.read_text()[:20])
    target = json.loads(next(p for p in first.folder.glob("*.json") if p != broken).read_text())
    done = render_cached(model, objectives()[:2], first, progress=False, render_options=OPTIONS)
    assert done.resumed == 1 and len(calls[2]) == 1 and calls[2][0] != target["target"]


def test_batches_hold_one_layer_each_and_at_most_the_batch_size():
    units = [fs.channel("conv1", k) for k in range(3)] + [fs.channel("conv2", k) for k in range(5)]
    units.append(fs.class_logit(1))
    names = [[o.name for o in batch] for batch in batches(units, 4)]
    assert names == [["conv1:0", "conv1:1", "conv1:2"], ["conv2:0", "conv2:1", "conv2:2", "conv2:3"],
                     ["conv2:4"], ["logit:1"]]


def test_dataset_examples_are_reused_until_the_folder_or_settings_change(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "a.png")
    scans = []

    def find() -> Examples:
        scans.append(1)
        return Examples({"conv:0": [Example(str(photos / "a.png"), 2.5, (0, 0, 4, 4))]}, 1,
                        [("b.png", "broken")])

    first, reused = cached_examples(tmp_path, {"k": 1}, photos, find)
    again, reused_again = cached_examples(tmp_path, {"k": 1}, photos, find)
    assert (reused, reused_again, len(scans)) == (False, True, 1)
    assert again == first
    cached_examples(tmp_path, {"k": 2}, photos, find)
    Image.new("RGB", (8, 8)).save(photos / "b.png")
    cached_examples(tmp_path, {"k": 1}, photos, find)
    assert len(scans) == 3
