"""Input kinds beyond images, with known answers where there is one."""

import csv
import json
import math
import wave

import numpy as np
import pytest
import torch
from PIL import Image

import featscope as fs
from featscope import FeatscopeError, inputs
from featscope.drawing.plots import montage
from featscope.models.adapters import adapt

from . import zoo


def test_signal_unit_tuned_to_a_frequency_gets_that_frequency():
    kind = inputs.Signal(sample_rate=zoo.SIGNAL_LENGTH)
    objectives = [fs.channel("energy", k) for k in range(len(zoo.TUNED_CYCLES))]
    result = fs.render(zoo.FrequencyDetector(), objectives, input_shape=(1, zoo.SIGNAL_LENGTH),
                       parameterize=kind.parameterize, steps=100, lr=0.05)
    for k, cycles in enumerate(zoo.TUNED_CYCLES):
        signal = result.images[k, 0]
        assert signal.abs().max() <= 1.0  # audio amplitude range
        # One FFT bin of tolerance: the 32-tap window smears the filter's peak.
        assert abs(inputs.dominant_frequency(signal, zoo.SIGNAL_LENGTH) - cycles) <= 1


def test_signal_files_npy_wav_and_plot(tmp_path):
    x = torch.sin(torch.linspace(0, 20, 400))[None].repeat(2, 1) * 0.5  # (C=2, L)
    files = inputs.Signal(sample_rate=8000).save(x, tmp_path, "unit")
    assert np.allclose(np.load(files["npy"]), x.numpy())
    with wave.open(files["wav"]) as audio:
        assert audio.getframerate() == 8000 and audio.getnchannels() == 2
        assert audio.getnframes() == 400
    with Image.open(files["plot"]) as plot:
        assert plot.size[0] > 100 and plot.size[1] > 100


def test_signal_without_sample_rate_writes_no_wav(tmp_path):
    files = inputs.Signal().save(torch.zeros(1, 64), tmp_path, "unit")
    assert "wav" not in files and set(files) == {"npy", "plot"}


def test_vector_bounds_are_respected_by_every_feature():
    model = zoo.TabularMLP()
    low = torch.tensor([0.0, -1.0, -math.inf, 2.0])
    high = torch.tensor([1.0, 1.0, 0.5, math.inf])
    kind = inputs.Vector(zoo.TabularMLP.feature_names, low, high)
    objectives = [fs.channel("fc2", k) for k in range(2)] + [fs.channel("fc1", k) for k in range(8)]
    result = fs.render(model, objectives, input_shape=(4,), parameterize=kind.parameterize,
                       steps=150, lr=0.2)
    assert (result.images >= low).all() and (result.images <= high).all()
    assert (result.final >= result.initial).all()


def test_linear_unit_with_box_bounds_goes_to_the_right_corner():
    linear = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
    kind = inputs.Vector(None, torch.tensor([-1.0, -2.0, 0.0]), torch.tensor([1.0, 3.0, 4.0]))
    result = fs.render(linear, fs.channel("", 0), input_shape=(3,),
                       parameterize=kind.parameterize, steps=300, lr=0.3)
    assert result.images[0].tolist() == pytest.approx([1.0, -2.0, 4.0], abs=0.05)


def test_vector_written_as_csv_and_json_with_feature_names(tmp_path):
    kind = inputs.Vector(["a", "b"])
    files = kind.save(torch.tensor([0.5, -2.0]), tmp_path, "unit")
    assert json.loads(open(files["json"]).read()) == {"a": 0.5, "b": -2.0}
    rows = list(csv.DictReader(open(files["csv"])))
    assert rows == [{"feature": "a", "value": "0.5"}, {"feature": "b", "value": "-2.0"}]


@pytest.mark.parametrize("suffix, text", [
    (".csv", "feature,low,high\nage,0,120\nincome,,\nheight,0.5,\n"),
    (".json", '{"age": [0, 120], "income": [null, null], "height": [0.5, null]}'),
])
def test_bounds_files(tmp_path, suffix, text):
    path = tmp_path / f"bounds{suffix}"
    path.write_text(text)
    kind = inputs.read_bounds(path)
    assert kind.names == ["age", "income", "height"]
    assert kind.low.tolist() == [0, -math.inf, 0.5]
    assert kind.high.tolist() == [120, math.inf, math.inf]


@pytest.mark.parametrize("text, message", [
    ("feature,low\nage,0\n", "feature,low,high"),
    ("feature,low,high\nage,5,1\n", "low must be below high"),
    ("feature,low,high\nage,x,1\n", "cannot read bounds"),
    ("feature,low,high\n", "lists no features"),
])
def test_bad_bounds_files(tmp_path, text, message):
    path = tmp_path / "bounds.csv"
    path.write_text(text)
    with pytest.raises(FeatscopeError, match=message):
        inputs.read_bounds(path)


def test_volume_npy_and_montage(tmp_path):
    result = fs.render(zoo.VolumeNet(), fs.channel("conv", 1), input_shape=(1, 6, 8, 8),
                       parameterize=inputs.Volume(max_norm=4.0).parameterize, steps=40, lr=0.1)
    assert result.images.shape == (1, 1, 6, 8, 8)
    assert result.final[0] > result.initial[0]
    files = inputs.Volume().save(result.images[0], tmp_path, "unit")
    assert np.load(files["npy"]).shape == (1, 6, 8, 8)
    with Image.open(files["montage"]) as montage:
        assert montage.size == (3 * 8, 2 * 8)  # 6 slices in a 3 x 2 grid


def test_montage_places_each_slice():
    volume = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 2, 2)
    grid = montage(volume)
    assert grid.shape == (1, 4, 4)
    assert grid[0, 0, 0] == 0 and grid[0, 0, 2] == pytest.approx(1 / 3)
    assert grid[0, 2, 2] == 1


def test_tokens_search_embedding_space_and_report_nearest_tokens(tmp_path):
    model = zoo.TinyTransformer().eval()
    loaded = adapt(fs.LoadedModel(model, "tiny", (5,)), embedding="embed", seq_len=5)
    assert loaded.input_shape == (5, 8)
    kind = inputs.Tokens(loaded.module.table, zoo.TinyTransformer.vocab)
    objectives = [fs.class_logit(k) for k in range(3)]
    result = fs.render(loaded, objectives, parameterize=kind.parameterize, steps=60, lr=0.1)
    radius = model.embed.weight.norm(dim=1).max()
    assert (result.images.norm(dim=-1) <= radius + 1e-4).all()
    assert (result.final > result.initial).all()
    ids = kind.nearest(result.images)
    hard = inputs.hard_token_scores(loaded.module, objectives, ids)
    with torch.no_grad():
        expected = model(ids)[torch.arange(3), torch.arange(3)]
    assert torch.allclose(hard, expected, atol=1e-5)
    files = kind.save(result.images[0], tmp_path, "unit")
    report = json.loads(open(files["tokens"]).read())
    assert report["tokens"] == [f"tok{i}" for i in ids[0].tolist()]


def test_embedding_layer_itself_can_be_a_target():
    loaded = adapt(fs.LoadedModel(zoo.TinyTransformer(), "tiny", (5,)), embedding="embed",
                   seq_len=3)
    kind = inputs.Tokens(loaded.module.table)
    result = fs.render(loaded, fs.channel("embed", 2, feature_axis=-1),
                       parameterize=kind.parameterize, steps=20, lr=0.1)
    assert result.final[0] > result.initial[0]


def test_nearest_token_of_an_exact_embedding_is_itself():
    table = torch.randn(10, 4)
    kind = inputs.Tokens(table)
    assert kind.nearest(table[[3, 7, 1]][None]).tolist() == [[3, 7, 1]]


def test_embedding_option_on_a_non_embedding_layer():
    with pytest.raises(FeatscopeError, match="not an nn.Embedding"):
        adapt(fs.LoadedModel(zoo.TinyTransformer(), "tiny", (5,)), embedding="head", seq_len=5)


@pytest.mark.parametrize("shape, kind", [
    ((3, 32, 32), "image"), ((1, 16000), "signal"), ((2, 4, 8, 8), "volume"), ((7,), "vector"),
    ((2, 3, 4, 5, 6), "tensor"),
])
def test_kind_inferred_from_shape(shape, kind):
    assert inputs.infer_kind(shape) == kind
