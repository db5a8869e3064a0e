"""Fuzzing: any string a user can type gives a valid result or a FeatscopeError, never another
exception (which the command line would show as a traceback)."""

import string

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from featscope import FeatscopeError, Objective
from featscope.cli import app
from featscope.cli.loading import parse_shape
from featscope.inputs import read_bounds
from featscope.models.adapters import select_output
from featscope.objectives.targets import parse_target

from . import zoo
from .models import ConvNet

MODEL = ConvNet(dims=2)
CLASSES = ["tabby cat", "goldfinch", "espresso", "Egyptian Mau", "tench"]
# Text that looks like targets often enough to reach the parser's deeper branches.
TARGETISH = st.text(alphabet=string.ascii_letters + string.digits + ":@,._- \t/\\\n" + "é☃\x00",
                    max_size=30)
TEMPLATES = st.sampled_from(["{}", "conv1:{}", "logit:{}", "prob:{}", "{}:3", "conv2:1@{}",
                             "fc:{}@1,2", "conv1:{}@{}"])


def accepts_or_explains(call):
    try:
        return call()
    except FeatscopeError as error:
        assert str(error)  # a message, not an empty error
        return None


@settings(max_examples=400, deadline=None)
@given(TEMPLATES, TARGETISH, TARGETISH)
def test_target_parser_never_raises_anything_else(template, a, b):
    text = template.format(a, b) if template.count("{}") == 2 else template.format(a)
    result = accepts_or_explains(lambda: parse_target(text, MODEL, CLASSES))
    assert result is None or isinstance(result, Objective)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_input_shape_parser(text):
    shape = accepts_or_explains(lambda: parse_shape(text))
    assert shape is None or (shape and all(d > 0 for d in shape))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=string.printable, max_size=80), st.sampled_from([".csv", ".json"]))
def test_bounds_file_reader(tmp_path, text, suffix):
    path = tmp_path / f"bounds{suffix}"
    path.write_text(text)
    accepts_or_explains(lambda: read_bounds(path))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=10))
def test_output_key_selection(key):
    outputs = [(torch.zeros(1), torch.ones(1)), {"a": torch.zeros(1), 3: torch.ones(1)},
               zoo.Prediction(torch.zeros(1), torch.ones(1)), torch.zeros(1)]
    for output in outputs:
        value = accepts_or_explains(lambda: select_output(output, key))
        assert value is None or isinstance(value, torch.Tensor)


MODELS = [("tests.zoo:TabularMLP", "4", "fc2:0"),
          ("tests.zoo:FrequencyDetector", "1x128", "energy:0"),
          ("tests.zoo:VolumeNet", "1x4x6x6", "conv:1")]
OPTION_VALUES = {
    "--pool": st.sampled_from(["mean", "max", "median", ""]),
    "--input-shape": st.sampled_from(["4", "0", "4x", "x", "2x2", "-4", "4,1", "1x128"]),
    "--search-input": st.sampled_from(["0", "1", "-1", "x"]),
    "--output": st.sampled_from(["0", "logits", "", "9"]),
    "--steps": st.sampled_from(["1", "0", "-3", "two"]),
    "--input-kind": st.sampled_from(["vector", "signal", "tokens", "image", "bogus", "tensor"]),
    "--embedding": st.sampled_from(["fc1", "nope"]),
    "--seq-len": st.sampled_from(["3", "0"]),
    "--device": st.sampled_from(["cpu", "auto", "gpu", "cuda:99"]),
    "--sample-rate": st.sampled_from(["8000", "0", "-5"]),
    "--bounds": st.sampled_from(["missing.csv", "tests"]),
    "--fixed-inputs": st.sampled_from(["missing.npz", "tests"]),
    "--vocab": st.sampled_from(["missing.txt", "tests"]),
    "--batch-size": st.sampled_from(["1", "0", "-2"]),
}

# A few options at a time, each with a value from its list.
OPTIONS = st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=4, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys}))
FUZZ_SETTINGS = settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.skipif(torch.cuda.is_available(), reason="device options would really use CUDA")
@FUZZ_SETTINGS
@given(st.sampled_from(MODELS), TARGETISH, OPTIONS)
def test_cli_arguments_never_crash(tmp_path, model, target, options):
    name, shape, default_target = model
    args = ["render", target or default_target, "--model", name, "--steps", "1",
            "--quiet", "--out", str(tmp_path / "out")]
    options.setdefault("--input-shape", shape)
    for option, value in options.items():
        args += [option, value]
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, FeatscopeError), repr(result.exception)
