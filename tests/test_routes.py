"""The route check (analysis.routes): a visualization that excites its unit through a path that
natural images never take is flagged; one that travels with the unit's natural images is not."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import featscope as fs
from featscope.analysis import (
    Route,
    natural_scores,
    path_layers,
    read_naturals,
    trace_routes,
)
from featscope.analysis.routes import MIN_SPAN
from featscope.engine.probing import list_layers

from .test_cli import featscope

IDENTITY = fs.Normalization([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])


class Stripes(nn.Module):
    """Fires (times ``gain``) only on horizontal stripes of period 8 px: a response above
    ``threshold`` of cosine kernels, which smooth natural images stay below."""

    def __init__(self, threshold: float, gain: float):
        super().__init__()
        wave = torch.cos(2 * math.pi * torch.arange(8.0) / 8)[:, None].expand(8, 8)
        kernels = torch.stack([wave, -wave, wave.roll(2, 0), -wave.roll(2, 0)])[:, None]
        self.register_buffer("kernels", kernels.expand(4, 3, 8, 8) / (3 * 64))
        self.threshold, self.gain = threshold, gain

    def forward(self, x):
        x = F.pad(x, (4, 3, 4, 3), mode="replicate")
        return self.gain * F.relu(F.conv2d(x, self.kernels) - self.threshold)


class Join(nn.Module):
    def forward(self, a, b):
        return torch.cat([a, b], 1)


class Routed(nn.Module):
    """Unit ``unit:0`` reads natural features (two convolutions) and a stripe detector.

    Honest: the detector is silent. Fooled, as Geirhos et al.'s fooling circuits: the detector
    fires on stripes, and where it fires it switches the natural features off, so a search
    follows the stripes alone. On natural images (no stripes) the two models are the same.
    """

    input_shape = (3, 32, 32)

    def __init__(self, fooled: bool):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 5, padding=2)
        self.natural = nn.Conv2d(8, 8, 3, padding=1)
        self.stripes = Stripes(threshold=0.1, gain=50.0 if fooled else 0.0)
        self.hidden = Join()
        self.unit = nn.Conv2d(12, 4, 1)
        with torch.no_grad():
            for conv in (self.stem, self.natural, self.unit):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator)
                                  / math.sqrt(conv.weight[0].numel()))
                conv.bias.zero_()
            self.unit.weight[:, 8:] = 1.0

    def forward(self, x):
        stripes = self.stripes(x)
        gate = torch.exp(-stripes.sum(1, keepdim=True))
        features = F.relu(self.natural(F.relu(self.stem(x))))
        return self.unit(self.hidden(features * gate, stripes))


def smooth_images(count: int, seed: int) -> torch.Tensor:
    """(count, 3, 32, 32) smooth random colour images in [0, 1] (blurred noise, full range)."""
    noise = torch.rand(count * 3, 1, 48, 48, generator=torch.Generator().manual_seed(seed))
    radius = torch.arange(-12, 13.0)
    kernel = torch.exp(-radius ** 2 / 32)
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(F.conv2d(noise, kernel[None, None, :, None]), kernel[None, None, None, :])
    images = blurred.reshape(count, 3, 24, 24)
    low, high = images.amin((1, 2, 3), keepdim=True), images.amax((1, 2, 3), keepdim=True)
    return F.interpolate((images - low) / (high - low), size=(32, 32), mode="bilinear",
                         align_corners=False)


def loaded(fooled: bool) -> fs.LoadedModel:
    return fs.LoadedModel(Routed(fooled), "routed", (3, 32, 32), IDENTITY)


NATURALS = list(smooth_images(24, seed=1))
UNITS = [fs.channel("unit", 0)] * 3


def test_the_two_models_are_one_on_natural_images():
    honest, fooled = loaded(False), loaded(True)
    stack = torch.stack(NATURALS)
    with torch.no_grad():
        assert float(fooled.module.stripes(stack).max()) == 0.0
        assert torch.equal(honest.module(stack), fooled.module(stack))
    assert torch.equal(natural_scores(honest, UNITS[:1], NATURALS),
                       natural_scores(fooled, UNITS[:1], NATURALS))


@pytest.mark.parametrize("fooled", [False, True])
def test_the_route_check_flags_the_fooled_unit_and_only_it(fooled):
    model = loaded(fooled)
    result = fs.render(model, UNITS, steps=128, seed=0)
    with torch.no_grad():
        fired = float(model.module.stripes(result.images).amax())
    # The premise: the fooled unit's visualization found the stripes (the honest one cannot).
    assert (fired > 1.0) if fooled else fired == 0.0
    routes = trace_routes(model, UNITS, result.images, NATURALS)
    assert [r.layers for r in routes] == [("stripes", "stem", "natural", "hidden")] * 3
    # Through the natural features both visualizations travel with the top natural images
    # (the silent stripes tell nothing); at the unit's input the fooled ones leave them.
    assert all(math.isnan(r.score[0]) and r.score[1] > 0.5 and r.score[2] > 0.5
               for r in routes)
    assert all(r.flagged == fooled for r in routes), [r.to_dict() for r in routes]
    if fooled:
        assert all(r.agreement < 0.5 for r in routes)
    else:
        assert all(r.agreement > 0.9 for r in routes)


def test_natural_images_read_once_give_the_routes_of_each_part():
    # The gallery reads the natural images once for all units and traces its chunks against
    # them: each part's routes are those traced on its own, and the scores natural_scores'.
    model, units = loaded(True), [fs.channel("unit", k) for k in range(4)]
    images = torch.stack(NATURALS[:4]).flip(-1)
    read = read_naturals(model, units, NATURALS)
    assert torch.equal(read.scores, natural_scores(model, units, NATURALS))
    assert len(read) == len(NATURALS)
    whole = trace_routes(model, units, images, NATURALS)
    parts = [*trace_routes(model, units[:3], images[:3], read.select(slice(0, 3))),
             *trace_routes(model, units[3:], images[3:], read.select(slice(3, None)))]
    assert [r.to_dict() for r in parts] == [r.to_dict() for r in whole]
    with pytest.raises(fs.FeatscopeError, match="read for 3 units, measured on 4"):
        trace_routes(model, units, images, read.select(slice(0, 3)))


def test_a_route_places_the_visualization_between_the_two_references():
    route = Route(("a", "b", "c", "d"), visualization=torch.tensor([0.2, 0.9, 0.5, 0.3]),
                  top=torch.tensor([0.6, 0.8, 0.5, 0.7]),
                  unrelated=torch.tensor([0.2, 0.0, 0.5, 0.1]))
    score = route.score
    assert score[0] == 0 and math.isclose(score[1], 0.9 / 0.8) and math.isnan(score[2])
    assert math.isclose(score[3], 1 / 3, rel_tol=1e-6)
    # The quarter of the path nearest the unit: its last layer here.
    assert math.isclose(route.agreement, 1 / 3, rel_tol=1e-6) and route.flagged
    row = route.to_dict()
    assert row["score"][2] is None and row["flagged"] is True and row["layers"] == list("abcd")


def test_a_layer_that_barely_tells_the_routes_apart_does_not_score():
    # At "b" the top images are 0.01 more alike than unrelated ones: a visualization 0.3 above
    # the unrelated images would score 30 there and decide the agreement alone.
    route = Route(("a", "b"), visualization=torch.tensor([0.5, 0.4]),
                  top=torch.tensor([0.8, 0.11]), unrelated=torch.tensor([0.2, 0.1]))
    assert math.isclose(route.score[0], 0.5, rel_tol=1e-6) and math.isnan(route.score[1])
    assert math.isnan(route.agreement) and not route.flagged  # the near layer tells nothing
    wider = Route(("a", "b"), visualization=torch.tensor([0.5, 0.4]),
                  top=torch.tensor([0.8, 0.1 + MIN_SPAN]), unrelated=torch.tensor([0.2, 0.1]))
    assert math.isclose(wider.agreement, 0.3 / MIN_SPAN, rel_tol=1e-5)


def test_the_path_ends_before_the_units_layer_and_a_class_reads_all():
    model = loaded(False)
    infos = list_layers(model.module, torch.zeros(1, 3, 32, 32))
    assert path_layers(infos, fs.channel("natural", 0)) == ["stripes", "stem"]
    assert path_layers(infos, fs.class_logit(0)) == ["stripes", "stem", "natural", "hidden",
                                                      "unit"]
    with pytest.raises(fs.FeatscopeError, match="no layer with a feature map runs before"):
        path_layers(infos, fs.channel("stripes", 0))


def test_a_unit_with_no_layer_before_it_has_no_route_and_the_others_are_unchanged():
    model = loaded(True)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    units = [fs.channel("stripes", 0), *UNITS[:2]]
    first, *others = trace_routes(model, units, images, NATURALS)
    assert first is None  # nothing runs before the first layer: not checked, not an error
    alone = trace_routes(model, UNITS[:2], images[1:], NATURALS)
    for route, own in zip(others, alone, strict=True):
        assert route.layers == own.layers and torch.equal(route.visualization, own.visualization)
    assert trace_routes(model, units[:1], images[:1], NATURALS) == [None]


def test_too_few_natural_images_is_a_clear_error():
    with pytest.raises(fs.FeatscopeError, match="at least 4 natural images"):
        trace_routes(loaded(False), UNITS[:1], torch.rand(1, 3, 32, 32), NATURALS[:3])


def test_evaluate_adds_each_units_route_to_the_summary(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(smooth_images(6, seed=2)):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).resize((96, 96)).save(photos / f"{i}.png")
    out = tmp_path / "out"
    # _blocks.0:3 has no block before it: its row says "not checked" and the others are.
    run = featscope("render", "_blocks.4:1", "_blocks.4:2", "_blocks.0:3", "--steps", "2",
                    "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stderr
    run = featscope("evaluate", str(out), "--natural", str(photos), "--draws", "1")
    assert run.returncode == 0, run.stderr
    assert "route check: " in run.stdout + run.stderr
    assert "1 not checked (no layer with a feature map runs before their unit's)" in \
        " ".join((run.stdout + run.stderr).split())
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["target"]: row for row in summary["results"]}
    unchecked = rows.pop("_blocks.0:3")
    assert unchecked["route"] is None and unchecked["metrics"]["route_agreement"] is None
    assert unchecked["metrics"]["route_flagged"] is None
    for row in rows.values():
        assert row["route"]["layers"] == [f"_blocks.{i}" for i in range(4)]
        assert len(row["route"]["score"]) == 4 and isinstance(row["route"]["flagged"], bool)
        assert row["metrics"]["route_agreement"] == row["route"]["agreement"]
        assert row["metrics"]["route_flagged"] == (
            None if row["route"]["agreement"] is None else row["route"]["flagged"])
    assert "route_agreement" in summary["metrics"] and "route_flagged" in summary["metrics"]
