"""The command line with every model source and input kind: the commands of docs/models.md."""

import csv
import json
import wave

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from featscope import FeatscopeError
from featscope.cli import app

from . import zoo
from .models import ConvNet
from .summaries import summary_rows


def ok(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def text(result) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def test_layers_of_an_onnx_file_with_shapes(tmp_path):
    pytest.importorskip("onnx2torch")
    path = tmp_path / "convnet.onnx"
    torch.onnx.export(ConvNet(dims=2).eval(), (torch.zeros(1, 3, 16, 16),), str(path),
                      dynamo=False)
    listing = ok("layers", "--model", str(path)).output
    assert "Conv" in listing and "(8, 16, 16)" in listing and "(5,)" in listing


def test_layers_and_render_of_a_torchscript_file(tmp_path):
    path = tmp_path / "convnet.pt"
    torch.jit.script(ConvNet(dims=1).eval()).save(str(path))
    listing = text(ok("layers", "--model", str(path), "--input-shape", "3x32"))
    assert "(5,)" in listing and "only its output can be probed" in listing
    ok("render", "logit:2", "--model", str(path), "--input-shape", "3x32", "--steps", "3",
       "--out", str(tmp_path / "out"))
    inner = CliRunner().invoke(app, ["render", "conv1:0", "--model", str(path), "--input-shape",
                                     "3x32", "--out", str(tmp_path / "out")])
    assert isinstance(inner.exception, FeatscopeError) and "TorchScript" in str(inner.exception)


def test_factory_with_safetensors_weights(tmp_path):
    weights = tmp_path / "mlp.safetensors"
    save_file(zoo.TabularMLP().state_dict(), str(weights))
    listing = ok("layers", "--model", "tests.zoo:TabularMLP", "--weights", str(weights),
                 "--input-shape", "4").output
    assert "fc1" in listing and "(8,)" in listing


def test_pickled_model_with_trust_pickle(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(ConvNet(dims=3), path)
    refused = CliRunner().invoke(app, ["layers", "--model", str(path)])
    assert "--trust-pickle" in str(refused.exception)
    listing = ok("layers", "--model", str(path), "--trust-pickle", "--input-shape",
                 "3x4x8x8").output
    assert "(6, 4, 8, 8)" in listing


def test_timm_model_with_weights_file(tmp_path):
    timm = pytest.importorskip("timm")
    weights = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), weights)
    listing = ok("layers", "--model", "timm:test_resnet", "--weights", str(weights)).output
    assert "timm:test_resnet" in listing and "(1000,)" in listing


def test_tuple_output_and_two_inputs(tmp_path):
    listing = ok("layers", "--model", "tests.zoo:TupleOutput", "--input-shape", "3x8x8",
                 "--output", "1").output
    assert "(model output)" in listing and "(5,)" in listing
    fixed = tmp_path / "image.npz"
    np.savez(fixed, np.zeros((3, 8, 8), dtype=np.float32))
    ok("render", "meta:1", "logit:0", "--model", "tests.zoo:TwoInputs", "--input-shape", "4",
       "--search-input", "1", "--fixed-inputs", str(fixed), "--steps", "5", "--out",
       str(tmp_path / "out"))
    for row in summary_rows(tmp_path / "out"):
        assert row["objective"] > row["objective_initial"]
        assert set(row["files"]) == {"csv", "json"}  # the searched input is a vector


def test_signal_render_writes_npy_wav_and_plot(tmp_path):
    ok("render", "energy:0", "--model", "tests.zoo:FrequencyDetector", "--input-shape",
       "1x128", "--steps", "5", "--quiet", "--out", str(tmp_path))
    files = summary_rows(tmp_path)[0]["files"]
    assert set(files) == {"npy", "wav", "plot"}
    with wave.open(files["wav"]) as audio:  # the model's own sample_rate attribute
        assert audio.getframerate() == zoo.FrequencyDetector.sample_rate


def test_volume_render_writes_npy_and_montage(tmp_path):
    ok("render", "conv:2", "--model", "tests.zoo:VolumeNet", "--input-shape", "1x6x8x8",
       "--steps", "3", "--quiet", "--out", str(tmp_path))
    files = summary_rows(tmp_path)[0]["files"]
    assert np.load(files["npy"]).shape == (1, 6, 8, 8) and files["montage"].endswith(".png")


def test_vector_render_respects_bounds_file(tmp_path):
    bounds = tmp_path / "bounds.csv"
    bounds.write_text("feature,low,high\nage,18,90\nincome,0,\nheight,1.4,2.1\nscore,-1,1\n")
    ok("render", "fc2:0", "fc2:1", "--model", "tests.zoo:TabularMLP", "--bounds", str(bounds),
       "--steps", "30", "--lr", "0.3", "--quiet", "--out", str(tmp_path / "out"))
    for row in summary_rows(tmp_path / "out"):
        rows = csv.DictReader(open(row["files"]["csv"]))
        values = {r["feature"]: float(r["value"]) for r in rows}
        assert 18 <= values["age"] <= 90 and values["income"] >= 0
        assert 1.4 <= values["height"] <= 2.1 and -1 <= values["score"] <= 1


def test_token_render_reports_nearest_tokens_and_gap(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(20)))
    ok("render", "logit:1", "--model", "tests.zoo:TinyTransformer", "--embedding", "embed",
       "--seq-len", "4", "--vocab", str(vocab), "--steps", "20", "--quiet",
       "--out", str(tmp_path / "out"))
    row = summary_rows(tmp_path / "out")[0]
    tokens = json.loads(open(row["files"]["tokens"]).read())["tokens"]
    assert len(tokens) == 4 and all(t.startswith("word") for t in tokens)
    assert row["soft_hard_gap"] == pytest.approx(row["objective"] - row["objective_hard_tokens"])


def test_option_of_another_input_kind_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["render", "fc2:0", "--model", "tests.zoo:TabularMLP",
                                      "--sample-rate", "16000", "--out", str(tmp_path)])
    assert isinstance(result.exception, FeatscopeError)
    assert "--sample-rate" in str(result.exception) and "vector" in str(result.exception)


def test_bounds_file_gives_the_vector_length(tmp_path):
    bounds = tmp_path / "bounds.json"
    bounds.write_text('{"a": [0, 1], "b": [0, 1], "c": [null, 0]}')
    listing = ok("layers", "--model", "torch.nn:Identity").output
    assert "(model output)" in listing
    ok("render", "logit:2", "--model", "torch.nn:Identity", "--bounds", str(bounds),
       "--steps", "5", "--quiet", "--out", str(tmp_path / "out"))
    row = summary_rows(tmp_path / "out")[0]
    assert json.loads(open(row["files"]["json"]).read()).keys() == {"a", "b", "c"}


def test_input_kind_that_does_not_fit_the_shape(tmp_path):
    result = CliRunner().invoke(app, ["render", "fc2:0", "--model", "tests.zoo:TabularMLP",
                                      "--input-kind", "signal", "--out", str(tmp_path)])
    assert isinstance(result.exception, FeatscopeError)
    assert "CxL" in str(result.exception) and "(4,)" in str(result.exception)
