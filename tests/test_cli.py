"""The command line: outputs that scripts rely on, and clear errors for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def featscope(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "featscope", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def assert_clear_error(run: subprocess.CompletedProcess, *fragments: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


def test_render_writes_pngs_and_summary(tmp_path):
    run = featscope("render", "_blocks.8:5", "logit:espresso", "_blocks.3:1@5,5", "--steps", "12",
                    "--size", "96", "--quiet", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "efficientnet_lite0" and summary["device"] == "cpu"
    assert summary["settings"]["steps"] == 12 and summary["settings"]["size"] == 96
    assert [r["target"] for r in summary["results"]] == ["_blocks.8:5", "logit:espresso",
                                                         "_blocks.3:1@5,5"]
    for row in summary["results"]:
        assert (tmp_path / row["image"]).is_file()
        assert row["objective"] > row["objective_initial"]
        assert row["seconds"] > 0


def test_layers_lists_shapes_and_feature_counts():
    run = featscope("layers")
    assert run.returncode == 0, run.stderr
    assert "_blocks.8" in run.stdout and "(112, 14, 14)" in run.stdout
    assert "(1000,)" in run.stdout


@pytest.mark.parametrize("args, fragments", [
    (["render", "_blocks.99:1"], ["unknown layer '_blocks.99'", "'_blocks.9'"]),
    (["render", "_blocks.8:500"], ["feature 500 is out of range", "valid 0..111"]),
    (["render", "logit:Egyptian cat"], ["unknown class name 'Egyptian cat'", "Egyptian Mau"]),
    (["render", "logit:1000"], ["class 1000 is out of range", "0..999"]),
    (["render", "_blocks.8:x"], ["non-negative whole number"]),
    (["render", "nonsense"], ["bad target 'nonsense'", "LAYER:K"]),
    (["render", "_blocks.8:1", "--model", "no_such_model"], ["unknown model 'no_such_model'"]),
    (["render", "_blocks.8:1", "--pool", "median"], ["unknown --pool 'median'", "mean, max"]),
    (["render", "_blocks.8:1", "--preset", "fancy"], ["unknown preset 'fancy'", "lucid"]),
    (["render", "_blocks.8:1", "--device", "cuda:7"], ["device"]),
])
def test_bad_input_gives_clear_error(tmp_path, args, fragments):
    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    assert_clear_error(featscope(*args, "--steps", "2", "--out", str(tmp_path)), *fragments)


def test_unreadable_weights_file(tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    run = featscope("render", "_blocks.8:1", "--weights", str(bad), "--out", str(tmp_path))
    assert_clear_error(run, "cannot read weights file", "state dict")


def test_weights_of_another_architecture(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    run = featscope("render", "_blocks.8:1", "--weights", str(path), "--out", str(tmp_path))
    assert_clear_error(run, "does not fit the model's architecture")


def test_target_that_does_not_depend_on_input(tmp_path):
    run = featscope("render", "const:0", "--model", "tests.models:DetachedBranch",
                    "--steps", "2", "--size", "16", "--out", str(tmp_path))
    assert_clear_error(run, "do not depend on the input")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = featscope("render", "_blocks.8:1", "--steps", "2", "--out", str(blocker / "sub"))
    assert_clear_error(run, "cannot write to output folder")
