"""Model specs: the one-line help naming every source, and the unknown-model error."""

import pytest

import featscope as fs
from featscope import FeatscopeError
from featscope.models import MODEL_SPEC_HELP

SOURCES = ["efficientnet_lite0 (default)", "efficientnet_lite1", "efficientnet_lite2",
           "torchvision:NAME", "timm:NAME",
           ".pt2 torch.export", "TorchScript .pt", "--trust-pickle", ".onnx",
           "package.module:factory", "./file.py:factory"]


def test_model_spec_help_names_every_source_in_one_short_line():
    assert "\n" not in MODEL_SPEC_HELP and len(MODEL_SPEC_HELP) < 240
    for source in SOURCES:
        assert source in MODEL_SPEC_HELP


@pytest.mark.parametrize("spec, start", [
    ("no_such_model", "unknown model 'no_such_model': not a file, not a known name."),
    ("efficientnet_lite3", "unknown model 'efficientnet_lite3'"),
    ("missing/model.pt2", "model file 'missing/model.pt2' does not exist"),
    ("model.onnx", "model file 'model.onnx' does not exist"),
])
def test_unknown_model_error_lists_every_source(spec, start):
    with pytest.raises(FeatscopeError) as caught:
        fs.load_model(spec)
    message = str(caught.value)
    assert message.startswith(start) and MODEL_SPEC_HELP in message and "\n" not in message


def test_unknown_model_close_to_a_known_name_suggests_it():
    with pytest.raises(FeatscopeError, match="Nearest: 'efficientnet_lite2'"):
        fs.load_model("efficientnet_lite3")
