"""Every failure case: bad models, NaN/Inf, out of memory, Ctrl-C, full disk, corrupt results."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import featscope as fs
from featscope import FeatscopeError, inputs
from featscope.cli import app
from featscope.files import writing as outputs
from featscope.rendering import render as render_units

from . import zoo
from .summaries import summary_rows


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("layer", ["rounded", "chosen", "detached"])
def test_layer_without_differentiable_path_is_named(layer):
    model = fs.LoadedModel(zoo.NoGradientPaths(), "m", (4,))
    with pytest.raises(FeatscopeError, match="no differentiable path"):
        render_units(model, [fs.channel("fc", 0), fs.channel(layer, 1)], steps=2)


@pytest.mark.parametrize("graphs", [False, True])
def test_nan_unit_is_retried_with_smaller_steps_and_recorded(graphs):
    # graphs=True on a CPU: the sync-free step that a CUDA graph captures, whose NaN check
    # stays on the device until the end of the search.
    model = fs.LoadedModel(zoo.NaNForLargeInputs(), "m", (4,))
    result = render_units(model, [fs.channel("", 0), fs.channel("", 1)], steps=12, lr=0.5,
                          shrink=4.0, graphs=graphs)
    assert torch.isfinite(result.final).all() and torch.isfinite(result.images).all()
    retried = result.settings["nan_retries"]
    assert list(retried) == [":1"]  # only the fragile unit
    assert retried[":1"][0] == 0.5 and retried[":1"][-1] < 0.5
    assert result.images[1].abs().max() < 2
    if graphs:  # the same units recover, with the same images
        plain = render_units(model, [fs.channel("", 0), fs.channel("", 1)], steps=12, lr=0.5,
                             shrink=4.0)
        assert plain.settings["nan_retries"] == retried
        assert torch.equal(plain.images, result.images)


def test_nan_at_every_step_size_is_a_clear_error():
    model = fs.LoadedModel(zoo.NaNForLargeInputs(), "m", (4,))
    with pytest.raises(FeatscopeError, match="NaN/Inf at every learning rate"):
        render_units(model, [fs.channel("", 1)], steps=200, lr=50.0, retries=1)


def test_out_of_memory_splits_the_batch_and_continues():
    module = zoo.OutOfMemoryAbove()
    model = fs.LoadedModel(module, "m", (4,))
    objectives = [fs.channel("fc", k) for k in range(6)]
    result = render_units(model, objectives, steps=3)
    assert result.targets == [o.name for o in objectives]
    assert result.images.shape == (6, 4)
    assert max(module.batches[-3:]) <= zoo.OutOfMemoryAbove.limit


def test_out_of_memory_for_one_unit_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(zoo.OutOfMemoryAbove, "limit", 0)
    model = fs.LoadedModel(zoo.OutOfMemoryAbove(), "m", (4,))
    with pytest.raises(FeatscopeError, match="out of GPU memory even for a single unit"):
        render_units(model, [fs.channel("fc", 0)], steps=2)


def test_interrupt_keeps_finished_chunks():
    model = fs.LoadedModel(torch.nn.Sequential(torch.nn.Linear(4, 6)), "m", (4,))
    finished = []

    def stop_in_third_chunk(step, values):
        if len(finished) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_units(model, [fs.channel("0", k) for k in range(5)], batch_size=2, steps=3,
                     on_batch=finished.append, on_step=stop_in_third_chunk)
    assert [[u.target for u in r] for r in finished] == [["0:0", "0:1"], ["0:2", "0:3"]]


def test_ctrl_c_in_cli_keeps_finished_units_and_resume_finishes(tmp_path, monkeypatch):
    # Each unit of 10 steps costs 12 forward passes (check, start, steps, final).
    monkeypatch.setattr(zoo.InterruptAfter, "calls", 30)
    targets = [f"fc:{k}" for k in range(4)]
    args = [*targets, "--model", "tests.zoo:InterruptAfter", "--input-shape", "4",
            "--steps", "10", "--batch-size", "1", "--out", str(tmp_path)]
    interrupted = run_cli("render", *args)
    assert interrupted.exit_code == 130
    assert "--resume" in interrupted.output and "2 of 4" in interrupted.output
    rows = summary_rows(tmp_path)
    assert [r["target"] for r in rows] == targets[:2]
    first_mtime = os.stat(rows[0]["files"]["json"]).st_mtime_ns
    monkeypatch.setattr(zoo.InterruptAfter, "calls", 10**9)
    resumed = run_cli("render", *args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    rows = summary_rows(tmp_path)
    assert [r["target"] for r in rows] == targets
    assert os.stat(rows[0]["files"]["json"]).st_mtime_ns == first_mtime  # not rendered again


def test_resume_renders_a_corrupt_result_again(tmp_path):
    args = ["fc2:0", "fc2:1", "--model", "tests.zoo:TabularMLP", "--input-shape", "4",
            "--steps", "3", "--quiet", "--out", str(tmp_path)]
    assert run_cli("render", *args).exit_code == 0
    rows = summary_rows(tmp_path)
    broken, intact = Path(rows[0]["files"]["json"]), Path(rows[1]["files"]["json"])
    broken.write_text("{ truncated")
    intact_mtime = intact.stat().st_mtime_ns
    resumed = run_cli("render", *args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "missing or corrupt" in resumed.output
    assert json.loads(broken.read_text()).keys() == set(zoo.TabularMLP.feature_names)
    assert intact.stat().st_mtime_ns == intact_mtime


def test_resume_with_corrupt_summary_renders_everything(tmp_path):
    (tmp_path / "summary.json").write_text("not json")
    run = run_cli("render", "fc2:0", "--model", "tests.zoo:TabularMLP", "--input-shape", "4",
                  "--steps", "2", "--out", str(tmp_path), "--resume")
    assert run.exit_code == 0, run.output
    assert "unreadable" in run.output
    assert json.loads((tmp_path / "summary.json").read_text())["results"][0]["target"] == "fc2:0"


def test_disk_full_keeps_finished_units_and_says_so(tmp_path, monkeypatch):
    real = outputs.atomic_write
    calls = []

    def full_after_first_unit(path, write):
        calls.append(path)
        if path.suffix == ".npy" and len([c for c in calls if c.suffix == ".npy"]) > 1:
            raise OSError(28, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(outputs, "atomic_write", full_after_first_unit)
    run = run_cli("render", "conv:0", "conv:1", "--model", "tests.zoo:VolumeNet",
                  "--input-shape", "1x4x6x6", "--steps", "2", "--batch-size", "1",
                  "--out", str(tmp_path))
    assert isinstance(run.exception, FeatscopeError)
    message = str(run.exception)
    assert "No space left on device" in message and "--resume" in message
    rows = summary_rows(tmp_path)
    assert [r["target"] for r in rows] == ["conv:0"]
    assert np.load(rows[0]["files"]["npy"]).shape == (1, 4, 6, 6)
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written files left behind


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "summary.json"
    outputs.write_json({"ok": 1}, path)

    def explode(stream):
        stream.write(b"{partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        outputs.atomic_write(path, explode)
    assert json.loads(path.read_text()) == {"ok": 1}


def test_model_that_fails_on_the_given_shape(tmp_path):
    run = run_cli("render", "fc2:0", "--model", "tests.zoo:TabularMLP", "--input-shape", "7",
                  "--out", str(tmp_path))
    assert isinstance(run.exception, FeatscopeError)
    assert "--input-shape" in str(run.exception) and "(1, 7)" in str(run.exception)


def test_dict_output_without_output_option_lists_the_keys(tmp_path):
    # Only a target on the output needs --output; inner layers and the listing do not.
    listing = run_cli("layers", "--model", "tests.zoo:DictOutput", "--input-shape", "3x8x8")
    assert listing.exit_code == 0, listing.output
    assert "features, logits" in " ".join(listing.output.split()) and "--output" in listing.output
    inner = run_cli("render", "conv:1", "--model", "tests.zoo:DictOutput", "--input-shape",
                    "3x8x8", "--steps", "2", "--quiet", "--out", str(tmp_path / "inner"))
    assert inner.exit_code == 0, inner.output
    run = run_cli("render", "logit:1", "--model", "tests.zoo:DictOutput", "--input-shape",
                  "3x8x8", "--steps", "2", "--out", str(tmp_path / "out"))
    assert isinstance(run.exception, FeatscopeError)
    assert "features, logits" in str(run.exception) and "--output" in str(run.exception)


def test_bad_batch_size_and_sample_rate_are_clear_errors():
    model = fs.LoadedModel(zoo.TabularMLP(), "m", (4,))
    with pytest.raises(FeatscopeError, match="batch size must be at least 1"):
        render_units(model, [fs.channel("fc2", 0)], batch_size=-2, steps=1)
    with pytest.raises(FeatscopeError, match="sample rate"):
        inputs.Signal(sample_rate=-5)
