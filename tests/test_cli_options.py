"""One set of options: every command that renders takes the shared options, with the same
meaning (the same help, the same default), and help texts keep what they say."""

import re
from dataclasses import fields

import pytest
from typer.testing import CliRunner

from featscope.cli import app
from featscope.cli.options import (
    OPTIONS,
    ExamplesOptions,
    ModelOptions,
    OutputOptions,
    RenderOptions,
)

RENDERING_COMMANDS = ["render", "sheet", "overview", "classes", "gallery"]
SHARED = [ModelOptions, RenderOptions, OutputOptions]


def help_text(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return result.output


def option_lines(text: str) -> dict[str, str]:
    """--flag -> its help (joined over wrapped lines), from a command's --help."""
    found, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^\s+(?:-\w, )?(--[\w-]+)(?: / --no-[\w-]+)?(?: <[^>]+>)?\s{2,}(.*)$",
                         line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current and line.startswith(" " * 10) and line.strip():
            found[current] += " " + line.strip()
        else:
            current = None
    return found


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.fixture(scope="module")
def helps() -> dict[str, dict[str, str]]:
    return {command: option_lines(help_text(command)) for command in RENDERING_COMMANDS}


def test_every_rendering_command_takes_the_shared_options_with_one_meaning(helps):
    shared = [f.name for group in SHARED for f in fields(group)]
    assert {"model", "weights", "input_shape", "output", "trust_pickle", "search_input",
            "fixed_inputs", "precision", "param", "pool", "batch_size", "seed",
            "device"} <= set(shared)
    for name in shared:
        texts = {command: helps[command].get(flag(name)) for command in RENDERING_COMMANDS}
        assert all(texts.values()), f"{flag(name)} is missing from: " \
            f"{[c for c, t in texts.items() if not t]}"
        assert len(set(texts.values())) == 1, f"{flag(name)} means different things: {texts}"
    for name in (f.name for f in fields(ExamplesOptions)):
        assert all(flag(name) in helps[c] for c in ("sheet", "overview", "classes", "gallery"))


def test_param_accepts_maco_everywhere(helps):
    assert all("maco" in helps[command]["--param"] for command in RENDERING_COMMANDS)


def test_every_option_is_declared_once_with_a_help_text():
    for name, (annotation, _) in OPTIONS.items():
        info = annotation.__metadata__[0]
        assert info.help and len(info.help) > 10, name


def test_help_texts_keep_brackets_and_braces():
    # Rich markup used to swallow "[low, high]".
    assert '{"feature": [low, high]}' in " ".join(help_text("render").split())


def test_model_help_names_every_model_source():
    text = " ".join(help_text("render").split())
    for source in ("efficientnet_lite0", "torchvision:NAME", "timm:NAME", ".pt2", "TorchScript",
                   "pickled", ".onnx", "package.module:factory", "./file.py:factory"):
        assert source in text, source
