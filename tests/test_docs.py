"""Every code block of the README and docs runs as written.

Blocks are read with pytest-codeblocks. Python blocks run as they are; each ``featscope``
line of a bash block runs as a command, in a folder that holds every file the docs name
(``docs_sandbox``), with two changes that keep the suite fast and offline, and that are
the only ones: few steps at a small size on the CPU (``--steps 2 --size 64 --device cpu``;
the size is kept for a neuron, whose location is in the full-size map, and for a ViT, whose
patch grid fixes its input size), and random weights for torchvision/timm models that would
be downloaded. ``make`` lines (the set-up that CI itself runs) and benchmarks (``bench/``)
are not run here.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_codeblocks import extract_from_file

from .docs_sandbox import build_sandbox

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RENDERING = {"render", "sheet", "overview", "classes", "gallery", "atlas"}
FAST = {"--steps": "2", "--size": "64", "--device": "cpu"}
FIXED_SIZE = ("timm:vit_",)  # models that take only their own input size


def blocks() -> list:
    found = []
    for document in DOCUMENTS:
        for block in extract_from_file(document):
            if block.syntax in ("python", "bash") and not any("skip" in m for m in block.marks):
                found.append(pytest.param(block, id=f"{document.name}:{block.lineno}"))
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    return build_sandbox(tmp_path_factory.mktemp("docs"))


def commands(code: str) -> list[list[str]]:
    """The commands of a bash block, comments and line continuations removed."""
    text = code.replace("\\\n", " ")
    return [words for line in text.splitlines() if (words := shlex.split(line, comments=True))]


def assert_extras_installed(words: list[str]) -> None:
    """A documented ``pip install -e '.[extra,…]'`` names extras this suite already installs.

    Installing is not repeated here (CI's ``make setup`` installs the ``test`` extra); the
    line is checked to name this project and extras that ``test`` covers, so it runs as
    written after set-up.
    """
    import tomllib

    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert words[1:3] == ["install", "-e"], f"a pip line that is not an editable install: {words}"
    target = words[3]
    assert target.startswith(".["), f"a documented pip line that installs something else: {words}"
    for extra in target[2:-1].split(","):
        assert extra in optional, f"{extra!r} is not an extra of pyproject.toml: {words}"
        assert set(optional[extra]) <= set(optional["test"]), f"the test extra lacks {extra!r}"


def runnable(words: list[str]) -> list[str] | None:
    """``words`` as the test runs them (see the module docstring), or None if not run here."""
    if words[0] == "make" or any("bench" in w for w in words):
        return None
    if Path(words[0]).name == "pip":
        assert_extras_installed(words)
        return None
    assert words[0] == "featscope", f"a documented command that is not featscope: {words}"
    args = list(words[1:])
    model = args[args.index("--model") + 1] if "--model" in args else ""
    if args and args[0] in RENDERING:
        # A neuron keeps its map; a ViT keeps its input size (its patch grid is fixed).
        keep_size = any("@" in a for a in args) or model.startswith(FIXED_SIZE)
        fast = {k: v for k, v in FAST.items() if k != "--size" or not keep_size}
        for option, value in fast.items():
            if option in args:
                args[args.index(option) + 1] = value
            else:
                args += [option, value]
    if model.startswith(("torchvision:", "timm:")) and "--weights" not in args:
        args.append("--random-weights")  # no downloads here
    return [sys.executable, "-m", "featscope", *args]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{cwd}"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("block", blocks())
def test_documented_code_runs(block, sandbox):
    if block.syntax == "python":
        done = run([sys.executable, "-c", block.code], sandbox)
        assert done.returncode == 0, done.stderr[-3000:]
        return
    ran = 0
    for words in commands(block.code):
        command = runnable(words)
        if command is None:
            continue
        done = run(command, sandbox)
        assert done.returncode == 0, f"{shlex.join(words)}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        ran += 1
    assert ran or all(runnable(w) is None for w in commands(block.code))
