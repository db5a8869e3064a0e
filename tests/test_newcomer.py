"""What a new user met first, one regression test per symptom (crashes, lost work, outputs
others cannot read, rough edges)."""

import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import featscope as fs
from featscope.cli import app
from featscope.drawing.plots import signal_plot

from . import zoo
from .models import ConvNet
from .summaries import summary_rows

REPO = Path(__file__).resolve().parent.parent
TINY = ["--steps", "2", "--size", "64", "--device", "cpu"]


def cli(*args: str, **kwargs):
    return CliRunner().invoke(app, list(args), **kwargs)


def ok(*args: str):
    result = cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0
    message = str(result.exception) if result.exception and not isinstance(
        result.exception, SystemExit) else result.output
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


class GrayNet(nn.Module):
    input_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def gray_net() -> nn.Module:
    return GrayNet()


# --- crashes ---------------------------------------------------------------------------------

def test_channel_and_class_targets_render_together_in_python(lite0):
    result = fs.render(lite0, [fs.channel("_blocks.8", 5), fs.class_logit(967)], steps=2)
    assert result.images.shape == (2, 3, 224, 224)  # the class (searched at 112) shown at 224
    assert result.targets == ["_blocks.8:5", "logit:967"]


@pytest.mark.parametrize("model, targets", [
    (["--model", "torchvision.models:resnet18"], ["layer2.0:3", "logit:7"]),
    (["--model", "tests.zoo:DictOutput", "--input-shape", "3x16x16", "--output", "logits"],
     ["conv:1", "logit:2"]),
])
def test_channel_and_class_targets_render_together_on_the_command_line(tmp_path, model, targets):
    ok("render", *targets, *model, *TINY, "--quiet", "--out", str(tmp_path))
    rows = summary_rows(tmp_path)
    assert [r["target"] for r in rows] == targets
    assert all(Path(r["image"]).is_file() for r in rows)


def test_classes_on_a_grayscale_model(tmp_path):
    ok("classes", "--classes", "0:3", "--model", "tests.test_newcomer:gray_net", "--steps", "2",
       "--device", "cpu", "--quiet", "--out", str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["index"] for c in summary["classes"]] == [0, 1, 2]
    assert all(0 < c["probability"] < 1 for c in summary["classes"])
    assert Image.open(tmp_path / summary["results"][0]["image"]).mode == "L"


@pytest.mark.parametrize("option, value, fragment", [
    ("--size", "-5", "size must be at least 8 px (got -5)"),
    ("--lr", "-1", "lr (the learning rate) must be a positive number (got -1)"),
    ("--steps", "0", "steps must be at least 1 (got 0)"),
    ("--crops", "-2", "crops must be 0"),
])
def test_bad_numbers_are_one_line_errors(tmp_path, option, value, fragment):
    one_line_error(cli("render", "_blocks.3:5", option, value, "--out", str(tmp_path)), fragment)


def test_units_past_the_layer_are_said(tmp_path):
    result = ok("sheet", "_blocks.3", "--units", "38:500", *TINY, "--out", str(tmp_path))
    assert "--units 38:500 goes past this layer's 40 features: rendering units 38..39" in \
        " ".join(result.output.split())
    assert len(summary_rows(tmp_path)) == 2


def test_bounds_naming_some_features_keep_the_model_shape(tmp_path):
    bounds = tmp_path / "bounds.csv"
    bounds.write_text("feature,low,high\nage,18,90\nheight,1.4,2.1\n")
    result = ok("render", "fc2:0", "--model", "tests.zoo:TabularMLP", "--bounds", str(bounds),
                "--steps", "20", "--lr", "0.3", "--out", str(tmp_path / "out"))
    text = " ".join(result.output.split())
    assert "2 feature(s) have no bounds in the file (income, score): searched within [-3, 3]" \
        in text
    values = json.loads(Path(summary_rows(tmp_path / "out")[0]["files"]["json"]).read_text())
    assert list(values) == zoo.TabularMLP.feature_names
    assert 18 <= values["age"] <= 90 and 1.4 <= values["height"] <= 2.1
    assert -3 <= values["income"] <= 3 and -3 <= values["score"] <= 3


# --- lost or misleading results --------------------------------------------------------------

def test_one_nan_target_keeps_the_finished_ones(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "featscope", "render", "logit:0", "logit:1",
                           "--model", "tests.zoo:NaNForLargeInputs", "--input-shape", "4",
                           "--input-kind", "tensor", "--steps", "200", "--lr", "50",
                           "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert "1 unit(s) failed" in done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == ["logit:1"]
    good, bad = summary["results"]
    assert good["error"] is None and (tmp_path / good["files"]["npy"]).is_file()
    assert "NaN/Inf at every learning rate" in bad["error"] and bad["files"] == {}


def test_a_second_render_into_the_folder_keeps_the_earlier_rows(tmp_path):
    ok("render", "_blocks.3:1", *TINY, "--quiet", "--out", str(tmp_path))
    ok("render", "_blocks.3:2", *TINY, "--quiet", "--out", str(tmp_path))
    ok("render", "_blocks.3:1", "--steps", "3", "--size", "64", "--device", "cpu", "--quiet",
       "--out", str(tmp_path))
    rows = {r["target"]: r for r in summary_rows(tmp_path)}
    assert list(rows) == ["_blocks.3:1", "_blocks.3:2"]
    assert len(rows["_blocks.3:1"]["history"]) == 3 and len(rows["_blocks.3:2"]["history"]) == 2
    assert rows["_blocks.3:1"]["settings_key"] != rows["_blocks.3:2"]["settings_key"]


def test_summary_paths_survive_copying_the_folder(tmp_path):
    ok("render", "logit:espresso", *TINY, "--quiet", "--out", str(tmp_path / "run"))
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.rmtree(tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "featscope", "evaluate", "copy", "--draws", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = json.loads((tmp_path / "copy" / "summary.json").read_text())["results"][0]
    assert row["image"] == "logit-espresso.png" and "robustness" in row["metrics"]


# --- outputs others can't read ---------------------------------------------------------------

def test_outputs_are_readable_by_others_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        ok("gallery", "--layers", "_blocks.2", "--per-layer", "1", *TINY, "--quiet",
           "--out", str(tmp_path))
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 5
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files), \
        {str(p): oct(p.stat().st_mode) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o644}


# --- your own models -------------------------------------------------------------------------

def test_the_normalization_used_is_printed(tmp_path):
    result = ok("render", "conv2:1", "--model", "tests.models:ConvNet", "--input-shape",
                "3x16x16", "--normalize", "imagenet", *TINY, "--out", str(tmp_path))
    assert "input normalization: --normalize imagenet" in result.output


def test_layers_of_an_inner_layer_need_no_output_choice(tmp_path):
    ok("render", "conv:1", "--model", "tests.zoo:DictOutput", "--input-shape", "3x8x8",
       *TINY, "--quiet", "--out", str(tmp_path))


# --- python API ------------------------------------------------------------------------------

def test_class_names_in_python(lite0):
    by_name = fs.class_logit("espresso")
    result = fs.render(lite0, by_name, steps=1, size=64)
    assert result.targets == ["logit:espresso"]
    assert fs.class_logit("espresso", class_names=lite0.class_names).k == 967
    with pytest.raises(fs.FeatscopeError, match="Egyptian Mau"):
        fs.render(lite0, fs.class_logit("Egyptian cat"), steps=1, size=64)


def test_render_reads_a_modules_input_shape():
    result = fs.render(GrayNet(), fs.class_logit(3), steps=2)
    assert result.images.shape == (1, 1, 28, 28)


def test_non_scalar_objective_is_refused():
    v = torch.zeros(3)
    with pytest.raises(ValueError, match=r"scalar.*shape \(3,\)"):
        fs.ascend(lambda: v - 1, [v], steps=1)


def test_progress_in_a_notebook_without_ipywidgets_is_a_plain_bar(monkeypatch):
    import importlib.util

    from tqdm import std

    from featscope.progress import progress_bar

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with progress_bar(3, "test") as bar:
            bar.update(3)
    assert type(bar) is std.tqdm


# --- smaller ---------------------------------------------------------------------------------

def test_layers_piped_to_a_file_keep_full_names_and_json():
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "40"}
    piped = subprocess.run([sys.executable, "-m", "featscope", "layers"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert "_blocks.0._depthwise_conv" in piped.stdout and "…" not in piped.stdout
    listed = json.loads(ok("layers", "--json").output)
    layers = {layer["name"]: layer for layer in listed["layers"]}
    assert layers["_blocks.8"]["shape"] == [112, 14, 14] and layers["_blocks.8"]["features"] == 112


def test_torchscript_loads_without_warnings(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.trace(ConvNet().eval(), torch.rand(1, 3, 16, 16)), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        fs.load_model(str(path), input_shape=(3, 16, 16))


def test_signal_plot_has_axes_and_a_readable_waveform():
    long = torch.sin(torch.linspace(0, 400, 16000))[None] * torch.linspace(0, 1, 16000)
    picture = np.asarray(signal_plot(long[0], sample_rate=16000).convert("L"), dtype=float)
    height = picture.shape[0] // 2
    wave = picture[:height, 52:-10]
    assert (wave < 100).mean() < 0.5  # not a solid block of ink
    assert (picture[:, :50] < 128).sum() > 50  # tick labels left of both panels
    assert (picture[height - 34:height, :] < 128).sum() > 50  # the time axis under the waveform


def test_unbounded_vector_is_warned(tmp_path):
    result = ok("render", "fc2:0", "--model", "tests.zoo:TabularMLP", "--steps", "2",
                "--out", str(tmp_path))
    assert "without --bounds is unbounded" in " ".join(result.output.split())
