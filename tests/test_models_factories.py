"""Factory specs: ``module:factory`` from the current directory without PYTHONPATH,
``path/to/file.py:factory``, and one clear line for each way they can fail."""

import sys

import pytest
import torch

import featscope as fs
from featscope import FeatscopeError

NETS = """
import torch
from torch import nn

from blocks import Block  # a sibling module: the file's folder is importable

threshold = 3


class Net(nn.Module):
    input_shape = (4,)

    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)


def build():
    return Net()


def broken():
    raise ValueError("no such width")


def not_a_module():
    return 42


class Builder:
    @staticmethod
    def small():
        return Net()
"""

BLOCKS = """
from torch import nn


class Block(nn.Linear):
    def __init__(self):
        super().__init__(4, 2)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's folder with nets.py (importing blocks.py) as the current directory."""
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "blocks.py").write_text(BLOCKS)
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    yield tmp_path
    for name in ("nets", "blocks"):
        sys.modules.pop(name, None)
    assert sys.path == path_before  # the folder was on sys.path for the loading only


def error_of(spec: str) -> str:
    with pytest.raises(FeatscopeError) as caught:
        fs.load_model(spec)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_module_factory_in_the_current_directory_needs_no_pythonpath(project):
    assert str(project) not in sys.path
    loaded = fs.load_model("nets:build")
    assert loaded.input_shape == (4,) and loaded.module(torch.zeros(3, 4)).shape == (3, 2)
    assert str(project) not in sys.path


@pytest.mark.parametrize("spec", ["./nets.py:build", "nets.py:Builder.small"])
def test_file_factory_relative_to_the_current_directory(project, spec):
    loaded = fs.load_model(spec)
    assert type(loaded.module).__name__ == "Net"


def test_file_factory_in_another_folder_imports_its_siblings(project, tmp_path_factory,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    loaded = fs.load_model(f"{project}/nets.py:build")
    assert loaded.module(torch.zeros(1, 4)).shape == (1, 2)
    layers = [info.name for info in fs.list_layers(loaded.module, torch.zeros(1, 4))]
    assert layers == ["block", ""]


def test_file_named_like_an_installed_module_does_not_shadow_it(tmp_path, monkeypatch):
    (tmp_path / "json.py").write_text("from torch import nn\n\ndef build():\n"
                                      "    return nn.Linear(2, 2)\n")
    monkeypatch.chdir(tmp_path)
    import json
    loaded = fs.load_model("./json.py:build", input_shape=(2,))
    assert isinstance(loaded.module, torch.nn.Linear)
    assert sys.modules["json"] is json and json.dumps([1]) == "[1]"


@pytest.mark.parametrize("spec, fragments", [
    ("./missing.py:build", ["factory file './missing.py' does not exist",
                            "package.module:factory or path/to/file.py:factory"]),
    ("no_such_module:build", ["no module 'no_such_module' in the current directory"]),
    ("nets:biuld", ["'nets' has no 'biuld'", "Net, build, broken", "Nearest: 'build'"]),
    ("nets.py:Builder.large", ["has no 'Builder.large'"]),
    ("nets:threshold", ["'nets:threshold' is a int, not a callable"]),
    ("nets:broken", ["calling 'nets:broken' (without arguments) failed: ValueError: no such "
                     "width"]),
    ("nets:not_a_module", ["returned a int, not a torch.nn.Module"]),
])
def test_factory_errors_are_one_clear_line(project, spec, fragments):
    message = error_of(spec)
    for fragment in fragments:
        assert fragment in message, message


def test_factory_module_that_fails_to_import_names_the_cause(project):
    (project / "needs_dep.py").write_text("import not_installed_dep\n")
    message = error_of("needs_dep:build")
    assert "importing 'needs_dep' for --model needs_dep:build failed" in message
    assert "No module named 'not_installed_dep'" in message
    sys.modules.pop("needs_dep", None)


def test_factory_file_that_raises_when_run(project):
    (project / "crashes.py").write_text("raise RuntimeError('bad config')\n")
    message = error_of("./crashes.py:build")
    assert "failed: RuntimeError: bad config" in message
    assert "crashes" not in sys.modules
