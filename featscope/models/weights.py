"""State dicts: reading ``.pth``/``.pt``/``.safetensors`` files, and loading one into a module.

A mismatch is reported in one line (counts and a few examples of the missing, unexpected or
reshaped tensors), and a key prefix that explains it (DDP's ``module.``, ``model.``,
``_orig_mod.`` of ``torch.compile``...) is named; when removing or adding such a prefix makes
the keys match exactly, it is done and said in a returned note.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import FeatscopeError
from .archives import archive_kind

StateDict = dict[str, object]

VALID_WEIGHTS = ("valid: a .pth/.pt file of torch.save(model.state_dict()) or a .safetensors "
                 "file")
# Where training scripts put the state dict in a checkpoint, most specific first.
CHECKPOINT_ENTRIES = ("state_dict", "model_state_dict", "model", "module", "net")
EXAMPLES = 3  # missing/unexpected keys named in an error
SHAPE_EXAMPLES = 2


def load_state_dict_file(path: str | Path) -> StateDict:
    """The state dict of a ``.pth``/``.pt`` file (read with ``weights_only=True``: no code
    runs) or a ``.safetensors`` file, or of a checkpoint's entry (``state_dict``, ``model``...)."""
    return read_state_dict(path)[0]


def read_state_dict(path: str | Path) -> tuple[StateDict, tuple[str, ...]]:
    """``load_state_dict_file`` and a note naming the checkpoint entry it was read from."""
    path = Path(path)
    if not path.is_file():
        raise FeatscopeError(f"weights file {str(path)!r} does not exist; {VALID_WEIGHTS}")
    return _state_dict_in(_read(path), path)


def _unreadable(path: Path) -> FeatscopeError:
    return FeatscopeError(f"cannot read weights file {str(path)!r}: it is not a PyTorch state "
                          f"dict or a .safetensors file; {VALID_WEIGHTS}")


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(str(path))
    except (SafetensorError, OSError):
        raise _unreadable(path) from None


def _read(path: Path) -> object:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    kind = archive_kind(path)
    if kind is not None:
        raise FeatscopeError(f"{str(path)!r} is a {kind} model, not weights: pass it as the "
                             f"model (--model {path}) without --weights")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # Only a pickle that names classes (a pickled object) says "Unsupported global".
        if "Unsupported global" in str(error):
            raise FeatscopeError(
                f"weights file {str(path)!r} holds pickled Python objects (a whole model?), not a "
                f"state dict: load it as the model with --model {path} --trust-pickle, or save "
                "model.state_dict() instead") from None
    except Exception:  # torch raises many types for a file that is not its own
        pass
    return _read_safetensors(path)  # a .safetensors file under another name, or unreadable


def _has_tensors(value: object) -> bool:
    return isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values())


def _state_dict_in(content: object, path: Path) -> tuple[StateDict, tuple[str, ...]]:
    """The state dict itself, or the one entry of a training checkpoint that holds it."""
    if _has_tensors(content):
        return content, ()  # type: ignore[return-value]
    if isinstance(content, dict):
        nested = [k for k, v in content.items() if _has_tensors(v)]
        preferred = [k for k in CHECKPOINT_ENTRIES if k in nested]
        if preferred or len(nested) == 1:
            key = (preferred or nested)[0]
            return content[key], (f"read the state dict of entry {key!r} of checkpoint "
                                  f"{str(path)!r}",)
        if nested:
            raise FeatscopeError(
                f"weights file {str(path)!r} is a checkpoint with several state dicts "
                f"({', '.join(map(repr, nested))}): save the one to use on its own, e.g. "
                f"torch.save(checkpoint[{nested[0]!r}], 'weights.pth')")
    raise FeatscopeError(f"weights file {str(path)!r} holds a {type(content).__name__} without "
                         f"tensors, not a state dict; {VALID_WEIGHTS}")


def _dotted_prefixes(keys: Iterable[str]) -> list[str]:
    """'' and each prefix of whole dotted names that all ``keys`` share, shortest first:
    ['', 'module.', 'module.backbone.'] for keys 'module.backbone.conv.weight', ..."""
    parts = os.path.commonprefix(list(keys)).split(".")[:-1]
    return [""] + [".".join(parts[:i]) + "." for i in range(1, len(parts) + 1)]


def _optional(key: str) -> bool:
    # Batch norms fill a missing counter themselves; it does not change what they compute.
    return key.endswith("num_batches_tracked")


@dataclass(frozen=True)
class KeyFit:
    """The checkpoint's keys with ``removed`` replaced by ``added``, against the model's."""

    removed: str
    added: str
    missing: list[str]  # model keys absent from the (renamed) checkpoint
    unexpected: list[str]  # (renamed) checkpoint keys absent from the model

    @property
    def exact(self) -> bool:
        return not self.missing and not self.unexpected

    @property
    def errors(self) -> int:
        return len(self.missing) + len(self.unexpected)

    def rename(self, key: str) -> str:
        return self.added + key[len(self.removed):]

    def action(self) -> str:
        """What the renaming does, for a note."""
        if self.removed and self.added:
            return (f"replaced the key prefix {self.removed!r} of all its keys with the "
                    f"model's {self.added!r}")
        if self.removed:
            return (f"removed the key prefix {self.removed!r} that all its keys have and the "
                    "model's lack")
        return (f"added the key prefix {self.added!r} that all the model's keys have and its "
                "keys lack")

    def fact(self) -> str:
        """The difference of prefixes that the renaming undoes, for a hint."""
        if self.removed and self.added:
            return (f"all its keys start with {self.removed!r} where the model's start with "
                    f"{self.added!r}")
        if self.removed:
            return f"all its keys start with {self.removed!r}, which the model's keys lack"
        return f"all the model's keys start with {self.added!r}, which its keys lack"


def _fit(keys: Collection[str], model_keys: Collection[str], removed: str, added: str) -> KeyFit:
    renamed = {added + k[len(removed):] for k in keys}
    missing = [k for k in model_keys if k not in renamed and not _optional(k)]
    unexpected = sorted(renamed - set(model_keys))
    return KeyFit(removed, added, missing, unexpected)


def fit_keys(keys: Collection[str], model_keys: Collection[str]) -> tuple[KeyFit, KeyFit]:
    """(as they are, best renaming): the fit of ``keys`` to ``model_keys`` unchanged, and the
    one with the fewest mismatches among every shared dotted prefix of the checkpoint's keys
    replaced by every shared dotted prefix of the model's (the unchanged fit when none helps)."""
    unchanged = _fit(keys, model_keys, "", "")
    best = unchanged
    for removed in _dotted_prefixes(keys):
        for added in _dotted_prefixes(model_keys):
            candidate = _fit(keys, model_keys, removed, added)
            if candidate.errors < best.errors:
                best = candidate
    return unchanged, best


def _examples(keys: list[str], count: int = EXAMPLES) -> str:
    return ", ".join(repr(k) for k in keys[:count]) + (", ..." if len(keys) > count else "")


def _key_error(path: str, module: nn.Module, fit: KeyFit, hint: KeyFit | None) -> FeatscopeError:
    parts = []
    if fit.missing:
        parts.append(f"{len(fit.missing)} of the model's keys are missing from it "
                     f"({_examples(fit.missing)})")
    if fit.unexpected:
        parts.append(f"{len(fit.unexpected)} of its keys are not in the model "
                     f"({_examples(fit.unexpected)})")
    advice = "are they weights for another architecture?"
    if hint is not None:
        leftover = _examples(hint.missing + hint.unexpected)
        advice = (f"{hint.fact()}, but apart from that {len(hint.missing)} keys are still "
                  f"missing and {len(hint.unexpected)} unexpected ({leftover}): {advice}")
    return FeatscopeError(f"weights file {path!r} does not fit the model's architecture "
                          f"({type(module).__name__}): {' and '.join(parts)}; {advice}")


def _check_shapes(path: str, state: Mapping[str, object],
                  model_state: Mapping[str, object]) -> None:
    wrong = [(k, tuple(v.shape), tuple(model_state[k].shape)) for k, v in state.items()
             if isinstance(v, torch.Tensor) and isinstance(model_state.get(k), torch.Tensor)
             and v.shape != model_state[k].shape]
    if wrong:
        examples = ", ".join(f"{k!r} {ours} in the file vs {theirs} in the model"
                             for k, ours, theirs in wrong[:SHAPE_EXAMPLES])
        raise FeatscopeError(f"weights file {path!r} does not fit the model's architecture: "
                             f"{len(wrong)} "
                             f"tensor(s) have other shapes, e.g. {examples}; were they trained "
                             "with other settings (number of classes, channels, size)?")


def apply_weights(module: nn.Module, path: str | Path) -> tuple[str, ...]:
    """Load the state dict file ``path`` into ``module``; notes on what was adapted (a key
    prefix removed, a checkpoint entry read), one line each. Any mismatch is a one-line
    ``FeatscopeError``."""
    state, notes = read_state_dict(path)
    path = str(path)
    model_state = module.state_dict()
    unchanged, best = fit_keys(state.keys(), model_state.keys())
    if not best.exact:
        raise _key_error(path, module, unchanged, best if best is not unchanged else None)
    if best is not unchanged:
        state = {best.rename(k): v for k, v in state.items()}
        notes += (f"weights file {path!r}: {best.action()}",)
    _check_shapes(path, state, model_state)
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not _optional(k)]
    if missing or result.unexpected_keys:  # what the comparison of keys could not foresee
        raise _key_error(path, module, KeyFit("", "", missing, list(result.unexpected_keys)),
                         None)
    return notes
