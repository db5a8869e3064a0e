"""Quality metrics on models built here, where the right answer is known."""

import pytest
import torch
from torch import nn

import featscope as fs
from featscope.analysis import metrics
from featscope.models import LoadedModel, identity_normalization


class MeanColour(nn.Module):
    """Logits = 10 x the mean of each colour channel; ``pool`` is that mean map."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return 10 * self.pool(x).flatten(1)


class FineDetail(nn.Module):
    """Class 0: energy of pixel-to-pixel differences (fine texture); class 1: a constant."""

    def forward(self, x):
        detail = (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3)) * 100
        return torch.stack([detail, torch.full_like(detail, 5.0)], 1)


def loaded(module: nn.Module, side: int = 32) -> LoadedModel:
    return LoadedModel(module.eval(), type(module).__name__, (3, side, side),
                       identity_normalization(3))


def test_activation_ratio_is_the_objective_over_the_best_natural_image():
    model = loaded(MeanColour())
    naturals = [torch.full((3, 50, 70), 0.2), torch.full((3, 40, 40), 0.5)]
    images = torch.stack([torch.full((3, 32, 32), 0.25), torch.full((3, 32, 32), 1.0)])
    objectives = [fs.channel("pool", 0), fs.class_logit(1)]
    ratio = metrics.activation_ratio(model, objectives, images, naturals)
    assert ratio.tolist() == pytest.approx([0.5, 2.0])


def test_robustness_is_one_for_an_invariant_objective_and_lower_for_a_local_one():
    model = loaded(MeanColour())
    grey = torch.full((1, 3, 32, 32), 0.5)
    assert metrics.robustness(model, [fs.channel("pool", 0)], grey).item() == pytest.approx(1.0)
    conv = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False))
    with torch.no_grad():
        conv[0].weight.fill_(1.0)
    dot = torch.zeros(1, 3, 32, 32)
    dot[..., 14:18, 14:18] = 1.0  # a small dot exactly under the neuron
    local = metrics.robustness(loaded(conv), [fs.neuron("0", 0, (15, 15))], dot, draws=16)
    assert 0 <= local.item() < 0.9


def test_an_images_robustness_does_not_depend_on_the_others_or_the_chunks():
    conv = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False))
    with torch.no_grad():
        conv[0].weight.fill_(1.0)
    model = loaded(conv)
    dots = torch.zeros(3, 3, 32, 32)
    for i, at in enumerate((8, 14, 20)):
        dots[i, :, at:at + 4, at:at + 4] = 1.0
    objectives = [fs.neuron("0", 0, (at + 1, at + 1)) for at in (8, 14, 20)]
    together = metrics.robustness(model, objectives, dots)
    one_by_one = metrics.robustness(model, objectives, dots, chunk=1)
    reordered = metrics.robustness(model, objectives[::-1], dots.flip(0), chunk=2)
    assert torch.equal(together, one_by_one) and torch.equal(together, reordered.flip(0))
    assert len(set(together.tolist())) == 3  # each neuron's own draws (not a constant)
    assert not torch.equal(together, metrics.robustness(model, objectives, dots, seed=1))


def test_transferability_counts_top1_top5_and_thumbnails_lose_fine_texture():
    judge = loaded(FineDetail(), side=96)
    checker = (torch.arange(96)[:, None] + torch.arange(96)[None, :]) % 2
    texture = checker.float().expand(3, 96, 96)
    smooth = torch.full((3, 96, 96), 0.5)
    result = metrics.transferability(judge, [0, 1], torch.stack([texture, smooth]))
    assert result.ranks["full"].tolist() == [0, 0]
    # Area-downscaling averages the checkerboard away: the texture is no longer class 0.
    assert result.ranks["64px"][0] == 1 and result.ranks["48px"][0] == 1
    assert result.ranks["48px"][1] == 0
    assert result.summary()["top1_full"] == 1.0 and result.summary()["top1_48px"] == 0.5
    assert result.summary()["top5_48px"] == 1.0  # two classes: everything is in the top 5


def test_transferability_needs_a_class_per_image_and_matching_channels():
    judge = loaded(MeanColour())
    with pytest.raises(fs.FeatscopeError, match="classes for"):
        metrics.transferability(judge, [0], torch.rand(2, 3, 32, 32))
    with pytest.raises(fs.FeatscopeError, match="3-channel"):
        metrics.transferability(judge, [0], torch.rand(1, 1, 32, 32))
    # A class beyond the judge's logits (it names no classes, so its output tells).
    with pytest.raises(fs.FeatscopeError, match="class 7 is out of range for the judge"):
        metrics.transferability(judge, [7], torch.rand(1, 3, 32, 32))
