"""Models built by the user's code: ``package.module:factory`` or ``path/to/file.py:factory``,
a zero-argument callable returning an ``nn.Module`` (``factory`` may be dotted:
``nets:Builder.small``).

As ``python -m`` does, the current directory is put on ``sys.path`` (and, as ``python file.py``
does, a file's own folder) while the module is imported and the factory called, so that
``--model mymodels:build`` works without PYTHONPATH. It is taken off again afterwards so that
it does not shadow other imports for the rest of the process; an import that the model's
code makes later, inside ``forward``, does not see it (import at the top of the module).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from torch import nn

from ..errors import FeatscopeError, did_you_mean

_FACTORY = re.compile(r"^(?P<target>.+):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
_MODULE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
FACTORY_FORMS = "valid: package.module:factory or path/to/file.py:factory"
LISTED = 10  # callables named when the factory is not found


def is_factory_spec(spec: str) -> bool:
    """``module.path:attr`` or ``some/file.py:attr``."""
    match = _FACTORY.match(spec)
    return match is not None and (match["target"].endswith(".py")
                                  or _MODULE.match(match["target"]) is not None)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@contextmanager
def _on_sys_path(folders: Sequence[str]) -> Iterator[None]:
    """``folders`` at the front of ``sys.path`` inside the block (those not there already)."""
    added = [f for f in dict.fromkeys(folders) if f not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def _import(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name + ".").startswith(error.name + "."):
            raise FeatscopeError(
                f"cannot import {name!r} for --model {spec}: no module {error.name!r} in the "
                f"current directory or on sys.path; {FACTORY_FORMS}") from None
        raise FeatscopeError(f"importing {name!r} for --model {spec} failed: "
                             f"{_one_line(error)}") from error
    except Exception as error:  # the module's own code failed
        raise FeatscopeError(f"importing {name!r} for --model {spec} failed: "
                             f"{_one_line(error)}") from error


def _module_name(path: Path) -> str:
    """The file's stem as a module name (as ``import stem`` would name it), unless another
    module already has that name."""
    name = re.sub(r"\W", "_", path.stem)
    name = name if name.isidentifier() else f"_{name}"
    existing = sys.modules.get(name)
    if existing is None or _same_file(existing, path):
        return name
    return f"_featscope_file_{name}_{zlib.crc32(str(path).encode()):08x}"


def _same_file(module: ModuleType, path: Path) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve() == path


def _module_from_file(target: str, spec: str) -> ModuleType:
    """The Python file ``target`` run as a module (once: a second load reuses it)."""
    if not Path(target).is_file():
        raise FeatscopeError(f"factory file {target!r} does not exist (--model {spec}); "
                             f"{FACTORY_FORMS}")
    path = Path(target).resolve()
    name = _module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise FeatscopeError(f"cannot load {target!r} as Python code (--model {spec})")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # as import does: dataclasses and pickling look it up there
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise FeatscopeError(f"running {target!r} for --model {spec} failed: "
                             f"{_one_line(error)}") from error
    return module


def _defined_callables(module: ModuleType) -> list[str]:
    return [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__]


def _attribute(module: ModuleType, attr: str, target: str, spec: str) -> object:
    value: object = module
    for part in attr.split("."):
        if not hasattr(value, part):
            defined = _defined_callables(module)
            listed = ", ".join(defined[:LISTED]) or "none"
            raise FeatscopeError(f"{target!r} has no {attr!r} (--model {spec}); callables "
                                 f"defined there: {listed}.{did_you_mean(attr, defined)}")
        value = getattr(value, part)
    if not callable(value):
        raise FeatscopeError(f"{spec!r} is a {type(value).__name__}, not a callable that "
                             "returns an nn.Module")
    return value


def _call(factory: object, spec: str) -> nn.Module:
    try:
        built = factory()  # type: ignore[operator]
    except Exception as error:
        raise FeatscopeError(f"calling {spec!r} (without arguments) failed: "
                             f"{_one_line(error)}") from error
    if not isinstance(built, nn.Module):
        raise FeatscopeError(f"{spec!r} returned a {type(built).__name__}, not a "
                             "torch.nn.Module")
    return built


def build(spec: str) -> nn.Module:
    """The module that the factory of ``spec`` (see ``is_factory_spec``) returns."""
    match = _FACTORY.match(spec)
    if match is None:
        raise FeatscopeError(f"bad factory {spec!r}; {FACTORY_FORMS}")
    target, attr = match["target"], match["attr"]
    is_file = target.endswith(".py")
    folders = [str(Path(target).resolve().parent)] if is_file else []
    with _on_sys_path([*folders, os.getcwd()]):
        module = _module_from_file(target, spec) if is_file else _import(target, spec)
        return _call(_attribute(module, attr, target, spec), spec)
