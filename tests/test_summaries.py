"""One results store and one summary.json: every command's output validates against
docs/summary.schema.json, and a rerun never serves a result made with other settings."""

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from featscope.cli import app

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "summary.schema.json")
                    .read_text())
TINY = ["--steps", "2", "--size", "64", "--device", "cpu", "--quiet"]


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.mark.parametrize("command", [
    ["render", "_blocks.3:5", "logit:espresso", "_blocks.3:1@5,5", "--copies", "2"],
    ["sheet", "_blocks.3", "--units", "0:3"],
    ["overview", "--layers", "_blocks.1,_blocks.4", "--per-layer", "2"],
    ["classes", "--classes", "1,goldfinch"],
    ["gallery", "--layers", "_blocks.2", "--per-layer", "2", "--classes", "goldfinch"],
    ["render", "fc2:0", "fc2:1", "--model", "tests.zoo:TabularMLP"],
])
def test_every_command_writes_a_summary_in_the_one_schema(tmp_path, command):
    run(*command, *TINY, "--out", str(tmp_path))
    written = summary(tmp_path)
    jsonschema.validate(written, SCHEMA)
    assert written["command"] == command[0]
    for row in written["results"]:
        assert row["files"] and all(not Path(p).is_absolute() and (tmp_path / p).is_file()
                                    for p in row["files"].values())
        assert row["settings_key"] in written["runs"]
        assert row["recipe"] in written["runs"][row["settings_key"]]["recipes"]
        assert row["reproduce"].startswith("featscope render ")


def test_evaluate_adds_metrics_in_the_schema(tmp_path):
    run("render", "logit:espresso", "_blocks.3:5", *TINY, "--out", str(tmp_path))
    run("evaluate", str(tmp_path), "--draws", "1")
    jsonschema.validate(summary(tmp_path), SCHEMA)
    assert all("robustness" in row["metrics"] for row in summary(tmp_path)["results"])


def test_rerun_with_other_steps_renders_anew_and_never_serves_the_old_result(tmp_path):
    common = ["_blocks.3:0", "--size", "64", "--seed", "0", "--device", "cpu", "--quiet",
              "--out", str(tmp_path)]
    run("render", *common, "--steps", "4")
    stale = CliRunner().invoke(app, ["render", *common, "--steps", "12", "--resume"])
    assert stale.exit_code == 0 and "resumed" not in stale.output
    rows = summary(tmp_path)["results"]
    assert [len(r["history"]) for r in rows] == [12]
    # Back to 4 steps: the first result is still in the store and is reused as it was.
    back = CliRunner().invoke(app, ["render", *[a for a in common if a != "--quiet"],
                                    "--steps", "4"])
    assert "resumed 1 of 1 units" in back.output
    assert [len(r["history"]) for r in summary(tmp_path)["results"]] == [4]


def test_batch_size_reaches_the_forward_pass_in_every_command(tmp_path):
    run("sheet", "_blocks.3", "--units", "0:6", "--batch-size", "3", *TINY,
        "--out", str(tmp_path))
    rows = summary(tmp_path)["results"]
    assert [len(r["batch"]) for r in rows] == [3] * 6
    assert rows[0]["batch"] == ["_blocks.3:0", "_blocks.3:1", "_blocks.3:2"]


def test_auto_precision_is_keyed_and_reproduced_as_what_it_resolved_to(tmp_path):
    # Not said: "auto", which is float32 on a CPU; the summary, the results' key and the
    # reproducing command hold float32, so asking for float32 finds the same result.
    run("render", "_blocks.3:5", *TINY, "--out", str(tmp_path))
    written = summary(tmp_path)
    jsonschema.validate(written, SCHEMA)
    assert written["settings"]["precision"] == "float32"
    assert "--precision float32" in written["results"][0]["reproduce"]
    run("render", "_blocks.3:5", *TINY, "--precision", "float32", "--out", str(tmp_path))
    assert summary(tmp_path)["resumed"] == 1
    bad = CliRunner().invoke(app, ["render", "_blocks.3:5", *TINY, "--precision", "half",
                                   "--out", str(tmp_path)])
    assert str(bad.exception) == ("unknown --precision 'half'; valid: auto, float32, bfloat16, "
                                  "float16")  # (featscope's main prints it as one line)
