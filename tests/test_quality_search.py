"""Diversity, accentuation and dead-unit warm-up, on models built here."""

import pytest
import torch
from torch import nn

import featscope as fs
from featscope.engine.warmup import LeakyGradients
from featscope.objectives import DEFAULT_DIVERSITY
from featscope.params import bounded_pixels
from featscope.rendering import accentuate

from .models import ConvNet, GaborUnits


def mean_pairwise_cosine(images: torch.Tensor) -> float:
    flat = images.flatten(1)
    flat = torch.nn.functional.normalize(flat - flat.mean(1, keepdim=True), dim=1)
    cosine = flat @ flat.T
    n = len(images)
    return float((cosine.sum() - n) / (n * (n - 1)))


def test_diversity_makes_the_images_of_one_unit_less_similar():
    torch.manual_seed(0)
    model = ConvNet()
    objectives = [fs.channel("conv2", 1)] * 4
    common = dict(input_shape=(3, 16, 16), steps=60, lr=0.1, transforms="none", seed=0)
    plain = fs.render(model, objectives, **common)
    diverse = fs.render(model, objectives, diversity=DEFAULT_DIVERSITY, **common)
    assert mean_pairwise_cosine(diverse.images) < mean_pairwise_cosine(plain.images) - 0.05
    assert (diverse.final > diverse.initial).all()  # each still excites the unit


def test_diversity_needs_one_batch():
    with pytest.raises(fs.FeatscopeError, match="one batch"):
        fs.render(ConvNet(), [fs.channel("conv2", 0)] * 4, input_shape=(3, 8, 8), steps=1,
                  diversity=1.0, batch_size=2)


def test_accentuation_stays_closer_to_the_source_than_an_unconstrained_run():
    source = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4), size=(16, 16),
                                             mode="bilinear")
    model = ConvNet()
    common = dict(input_shape=(3, 16, 16), steps=40, lr=0.1, transforms="none")
    free = fs.render(model, fs.channel("conv2", 2), start=source, param="pixel", **common)
    close = accentuate(model, fs.channel("conv2", 2), source, **common)
    distance = lambda r: float((r.images - source).pow(2).mean())  # noqa: E731
    assert distance(close) < 0.5 * distance(free)
    assert close.final[0] > close.initial[0]
    # The search starts exactly at the source image.
    start = fs.render(model, fs.channel("conv2", 2), start=source, param="pixel", steps=1,
                      lr=1e-9, input_shape=(3, 16, 16), transforms="none")
    assert torch.allclose(start.images, source, atol=5e-3)


def test_start_image_of_the_wrong_shape_is_reported():
    with pytest.raises(fs.FeatscopeError, match="start image must be"):
        fs.render(ConvNet(), fs.channel("conv2", 0), input_shape=(3, 8, 8), steps=1,
                  start=torch.rand(1, 1, 8, 8))


class DeadUnit(nn.Module):
    """Channel 0 fires only when the mean input exceeds 20/27 ≈ 0.74: from a grey start
    (sigmoid(~0) = 0.5) its ReLU is off everywhere and its gradient is exactly zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.copy_(torch.tensor([-20.0, 0.0]))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv(x))


def test_warmup_revives_a_dead_unit_and_the_result_flags_units_that_never_activated():
    model = DeadUnit()
    common = dict(input_shape=(3, 8, 8), steps=60, lr=0.1, transforms="none", param="pixel")
    dead = fs.render(model, fs.channel("relu", 0), **common)
    assert dead.never_activated == [True] and dead.zero_gradient == [True]
    assert dead.final[0] == 0
    revived = fs.render(model, fs.channel("relu", 0), warmup=40, **common)
    assert revived.never_activated == [False]
    assert revived.final[0] > 0
    # The hooks are gone and the in-place flag is back once the search is over.
    assert not model.relu._forward_hooks and model.relu.inplace


def test_leaky_gradients_change_only_the_backward_pass():
    relu = nn.ReLU6()
    x = torch.tensor([-1.0, 3.0, 7.0], requires_grad=True)
    with LeakyGradients(relu, slope=0.1):
        y = relu(x)
        y.sum().backward()
    assert torch.equal(y.detach(), torch.tensor([0.0, 3.0, 6.0]))
    assert torch.allclose(x.grad, torch.tensor([0.1, 1.0, 0.1]))
    x.grad = None
    relu(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 0.0]))


def test_legible_preset_is_the_benchmarked_recipe_and_scales_with_the_input():
    # docs/quality.md measured "thumbs-40": 112 px, Lucid's pixel transforms, 2 crop views
    # seen as thumbnails of 1/5 to all of the side.
    model = ConvNet()
    common = dict(input_shape=(3, 224, 224), steps=2, seed=3)
    default = fs.render(model, fs.channel("conv2", 0), preset="legible", **common)
    measured = fs.render(model, fs.channel("conv2", 0), size=112, upsample_below=224,
                         transforms="lucid", crops=2, crop_start=(0.75, 1.0),
                         crop_end=(0.75, 1.0), crop_rotate=5.0, thumbnail_views=(0.2, 1.0),
                         polish=0.0, **common)  # the unit preset's faithful finish: not legible's
    assert default.images.shape == (1, 3, 112, 112)
    assert torch.allclose(default.images, measured.images)
    # A 32 px model keeps its full resolution.
    small = fs.render(model, fs.channel("conv2", 0), input_shape=(3, 32, 32), steps=1,
                      preset="legible")
    assert small.images.shape == (1, 3, 32, 32)


def test_bad_resolution_is_reported():
    with pytest.raises(fs.FeatscopeError, match="resolution must be in"):
        fs.render(ConvNet(), fs.channel("conv2", 0), input_shape=(3, 32, 32), steps=1,
                  resolution=1.5)


def test_the_faithful_finish_searches_bounded_pixels_that_can_leave_black_and_white():
    start = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(1, 3, 2, 2).clone()  # black, white
    param = bounded_pixels(start, device=torch.device("cpu"))
    assert torch.equal(param(), start)  # the image it starts from, exactly
    optimizer = torch.optim.Adam(param.params, lr=0.05)
    for _ in range(12):  # descent on the white pixels' sum minus the black's: toward grey...
        optimizer.zero_grad()
        (param() * (2 * start - 1)).sum().backward()
        optimizer.step()
        param.project()
        image = param().detach()
        assert image.min() >= 0 and image.max() <= 1
    # ... at the step's rate (a sigmoid's flat ends would hold them at black and white)
    assert torch.allclose(image, (start - 0.6).abs(), atol=1e-4)
    # The default unit recipe's finish ends on such pixels, inside [0, 1].
    result = fs.render(GaborUnits([(0.5, 0.15)]), [fs.channel("relu", 0)], steps=20,
                       device="cpu", progress=False)
    assert result.units[0].recipe.polish_steps > 0
    assert result.images.min() >= 0 and result.images.max() <= 1
