"""Resumable rendering through the results store: an interrupted run keeps its finished
batches; a rerun renders only what is missing; other settings never reuse a result."""


import pytest
import torch
from PIL import Image

import featscope as fs
import featscope.rendering.api as render_api
from featscope.analysis.examples import Example, Examples, cached_examples
from featscope.inputs import Image as ImageKind
from featscope.models import identity_normalization
from featscope.rendering import make_units, plan_batches
from featscope.store import ResultStore

from .models import ConvNet

OPTIONS = {"steps": 3, "seed": 0, "device": "cpu", "batch_size": 2}


@pytest.fixture
def model():
    torch.manual_seed(1)
    return fs.LoadedModel(ConvNet(), "convnet", (3, 16, 16), identity_normalization(3))


@pytest.fixture
def calls(monkeypatch):
    """Records the labels of every batch that is searched."""
    batches = []
    real = render_api.render_batch

    def recording(loaded, batch, *args, **kwargs):
        batches.append(batch.labels)
        return real(loaded, batch, *args, **kwargs)

    monkeypatch.setattr(render_api, "render_batch", recording)
    return batches


def objectives():
    return [fs.channel("conv2", k) for k in range(6)]


def render_missing(model, store: ResultStore, options=OPTIONS) -> list:
    """What a command does: reuse stored units, render the rest, store each batch at once."""
    wanted = objectives()
    todo = [o for o in wanted if store.get(o.name) is None]
    if todo:
        fs.render(model, todo, on_batch=lambda units: [store.put(u) for u in units], **options)
    return [store.get(o.name) for o in wanted]


def test_interrupted_run_resumes_with_only_the_missing_units(model, tmp_path, calls,
                                                             monkeypatch):
    store = ResultStore(tmp_path, {"model": "convnet", "steps": 3, "seed": 0}, ImageKind())
    recording = render_api.render_batch

    def interrupted(loaded, batch, *args, **kwargs):
        if len(calls) == 1:  # Ctrl-C during the second batch
            raise KeyboardInterrupt
        return recording(loaded, batch, *args, **kwargs)

    monkeypatch.setattr(render_api, "render_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_missing(model, store)
    assert calls == [["conv2:0", "conv2:1"]]
    assert len(list((tmp_path / "cache").rglob("*.result.json"))) == 2

    monkeypatch.setattr(render_api, "render_batch", recording)
    done = render_missing(model, store)
    assert calls[1:] == [["conv2:2", "conv2:3"], ["conv2:4", "conv2:5"]]
    assert [u.label for u in done] == [f"conv2:{k}" for k in range(6)]
    assert all(len(u.history) == 3 and u.objective > u.objective_initial for u in done)

    again = render_missing(model, store)
    assert len(calls) == 3  # nothing rendered the third time
    assert [u.files for u in again] == [u.files for u in done]


def test_other_settings_render_again_and_partial_files_are_redone(model, tmp_path, calls):
    first = ResultStore(tmp_path, {"seed": 0}, ImageKind())
    render_missing(model, first, {**OPTIONS, "batch_size": 6})
    other = ResultStore(tmp_path, {"seed": 1}, ImageKind())
    assert other.folder != first.folder
    render_missing(model, other, {**OPTIONS, "seed": 1, "batch_size": 6})
    assert calls == [[f"conv2:{k}" for k in range(6)]] * 2

    # A record cut short (as a crash before the atomic rename never leaves) counts as missing.
    broken = next(first.folder.glob("*.result.json"))
    broken.write_text(broken.read_text()[:20])
    render_missing(model, first, {**OPTIONS, "batch_size": 6})
    assert len(calls) == 3 and len(calls[2]) == 1


def test_batches_hold_one_layer_each_and_at_most_the_batch_size(model):
    units = [fs.channel("conv1", k) for k in range(3)] + [fs.channel("conv2", k) for k in range(5)]
    units.append(fs.class_logit(1))
    batches = plan_batches(make_units(units, seed=0), preset="featscope", overrides={},
                           loaded=model, device=torch.device("cpu"), batch_size=4)
    assert [b.labels for b in batches] == [["conv1:0", "conv1:1", "conv1:2"],
                                          ["conv2:0", "conv2:1", "conv2:2", "conv2:3"],
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
