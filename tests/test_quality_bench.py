"""The quality benchmark's own parts (bench/quality.py): every candidate recipe renders, the
log-probability candidate searches what it says, and the selection rule picks as written."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench import quality

DOCS = Path(__file__).resolve().parent.parent / "docs"


def small_classifier() -> nn.Module:
    """A classifier with a batch norm (for the batch-norm prior's candidates): (B, 3, 64, 64)
    -> (B, 5) logits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    model.eval().input_shape = (3, 64, 64)
    return model


@pytest.mark.parametrize("name", sorted(quality.CANDIDATES))
def test_every_candidate_renders(name):
    # A candidate that does not build (a misspelt setting, an objective it does not know)
    # would otherwise fail only in the middle of a benchmark run on a lent GPU.
    result, seconds = quality.render_preset(small_classifier(), name, [1, 3], 2, "cpu")
    # (B, C, H, W) at the candidate's own side (a size or a reduced resolution keeps its own).
    assert result.images.shape[:2] == (2, 3) and seconds > 0
    assert torch.isfinite(result.final).all()


def test_the_bare_candidates_are_known_candidates():
    assert quality.TUNING_CANDIDATES and set(quality.TUNING_CANDIDATES) <= set(quality.CANDIDATES)


def test_the_log_softmax_candidate_searches_the_class_log_probability():
    model = small_classifier()
    result, _ = quality.render_preset(model, "thumbs-40-logsoftmax", [1, 3], 4, "cpu")
    with torch.no_grad():  # the images are at half the side: the search enlarges them
        logits = model(F.interpolate(result.images, size=(64, 64), mode="bilinear"))
    rows, classes = torch.arange(2), torch.tensor([1, 3])
    # Within the enlargement's rounding, and far from the logit itself.
    assert torch.allclose(result.final, logits.log_softmax(1)[rows, classes], atol=5e-3)
    assert ((result.final - logits[rows, classes]).abs() > 0.1).all()


def row(full: float, px64: float, px48: float) -> dict:
    return {"top1_full": full, "top1_64px": px64, "top1_48px": px48}


def test_the_rule_picks_the_highest_smallest_margin_then_the_thumbnails_then_the_default():
    # The smallest margin above the targets (95 / 85 / 60 %) decides ...
    assert quality.choose({"auto": row(0.94, 0.98, 0.92), "b": row(0.96, 0.86, 0.61)}) == "b"
    # ... a tie goes to the higher mean of the thumbnails ...
    assert quality.choose({"auto": row(0.94, 0.98, 0.92), "b": row(0.94, 0.94, 0.94)}) == "auto"
    assert quality.choose({"auto": row(0.94, 0.90, 0.90), "b": row(0.94, 0.94, 0.94)}) == "b"
    # ... then to the default: auto at the steps the class preset takes, not at other steps.
    assert quality.choose({"b": row(0.94, 0.98, 0.92), "auto": row(0.94, 0.98, 0.92)}) == "auto"
    steps = quality.class_steps()
    tied = {"auto": {**row(0.94, 0.98, 0.92), "steps": steps // 2},
            f"auto-{steps}-steps": {**row(0.94, 0.98, 0.92), "steps": steps}}
    assert quality.choose(tied) == f"auto-{steps}-steps"
    assert quality.choose(dict(reversed(tied.items()))) == f"auto-{steps}-steps"


def test_the_default_is_what_the_rule_picked_from_the_recorded_tuning_run():
    # The rule picked the default recipe ("auto" renders classes as legible) at the steps the
    # legible preset now takes; a later tuning row that wins must become the default.
    results = json.loads((DOCS / "quality-tuning-lite2-cpu.json").read_text())["results"]
    picked = quality.choose(results)
    assert quality.is_default(picked, results[picked]), picked
