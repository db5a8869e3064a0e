"""The docs name files and code that exist: every ``featscope/….py`` path (with its ``: name``)
and every ``featscope.…`` dotted name in the README and docs/ resolves in this checkout."""

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import featscope

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `featscope/params/images.py: maco` or `featscope/engine/warmup.py`
PATH = re.compile(r"`(featscope/[\w/]+\.py)(?::\s*(\w+))?`")
# `featscope.analysis.trace_routes(...)`, `featscope.accentuation.accentuate`
DOTTED = re.compile(r"\bfeatscope(?:\.\w+)+")
# Lines about names that are gone or deprecated (the README's note on renamed modules).
GONE = re.compile(r"no longer (?:a )?modules?|[Dd]eprecated|\(use `")


def mentions(pattern: re.Pattern) -> list[tuple[str, int, re.Match]]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if GONE.search(line):
                continue
            found += [(doc.name, number, m) for m in pattern.finditer(line)]
    return found


def deprecated(module) -> bool:
    """A module kept for one release under an old name (its docstring says so; it warns only
    when first imported, so the warning cannot tell)."""
    return (module.__doc__ or "").startswith("Deprecated")


def resolve(dotted: str):
    """The object a dotted name names: modules imported as needed, attributes read. A
    deprecated module on the way fails: the docs point at the current names."""
    obj, parts = featscope, dotted.split(".")[1:]
    for i, part in enumerate(parts):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            obj = importlib.import_module(".".join(["featscope", *parts[:i + 1]]))
        assert not (isinstance(obj, ModuleType) and deprecated(obj)), \
            f"{dotted} goes through a deprecated module, {obj.__name__}"
    return obj


def test_the_docs_mention_files_and_names():
    # The pattern reads what the docs write; a docs rewrite that drops every mention would
    # make the tests below vacuous.
    assert len(mentions(PATH)) >= 5 and len(mentions(DOTTED)) >= 10


@pytest.mark.parametrize("where,line,match", mentions(PATH),
                         ids=lambda v: v.group(0) if isinstance(v, re.Match) else None)
def test_a_documented_path_exists_and_holds_the_named_code(where, line, match):
    path, name = match.group(1), match.group(2)
    assert (ROOT / path).is_file(), f"{where}:{line} names {path}, which does not exist"
    module = importlib.import_module(path[:-3].replace("/", "."))
    assert not deprecated(module), f"{where}:{line} names {path}, a deprecated module"
    if name:
        assert hasattr(module, name), f"{where}:{line}: {path} has no {name}"


@pytest.mark.parametrize("where,line,match", mentions(DOTTED),
                         ids=lambda v: v.group(0) if isinstance(v, re.Match) else None)
def test_a_documented_dotted_name_resolves(where, line, match):
    try:
        resolve(match.group(0))
    except (ImportError, AttributeError):
        pytest.fail(f"{where}:{line} names {match.group(0)}, which does not exist")
