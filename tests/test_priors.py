"""Natural-image priors as terms: DeepInversion's batch-norm statistics prior."""

import torch
from torch import nn

import featscope as fs
from featscope.objectives.priors import BatchNormStatistics


class NormedNet(nn.Module):
    """conv -> batch norm -> ReLU -> conv -> batch norm: running statistics set by hand."""

    input_shape = (3, 16, 16)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.weight.uniform_(0.5, 2.0)
                bn.bias.uniform_(-0.5, 0.5)
        self.eval()

    def forward(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


def calibrate(model: NormedNet, image: torch.Tensor) -> None:
    """Running statistics that are exactly those of ``image`` (1, 3, H, W)."""
    with torch.no_grad():
        h = model.conv1(image)
        model.bn1.running_mean.copy_(h.mean((0, 2, 3)))
        model.bn1.running_var.copy_(h.var((0, 2, 3), unbiased=False))
        h = model.conv2(model.relu(model.bn1(h)))
        model.bn2.running_mean.copy_(h.mean((0, 2, 3)))
        model.bn2.running_var.copy_(h.var((0, 2, 3), unbiased=False))


def prior_of(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    prior = BatchNormStatistics.of_model(model)
    with fs.Probe(model, sorted(prior.layers)) as probe, torch.no_grad():
        return prior(probe.run(images))


def test_the_prior_is_zero_where_the_statistics_are_the_running_ones():
    model = NormedNet()
    torch.manual_seed(1)
    image, other = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.2
    calibrate(model, image)
    values = prior_of(model, torch.cat([image, other]))
    assert values[0].abs() < 1e-4 and values[1] > 0.1


def test_the_prior_falls_under_a_search_and_is_computed_once_per_step(monkeypatch):
    model = NormedNet()
    calibrate(model, torch.rand(1, 3, 16, 16))
    prior = BatchNormStatistics.of_model(model)
    calls = []
    real = BatchNormStatistics.score

    def counted(self, acts):
        calls.append(next(iter(acts.values())).shape[0])
        return real(self, acts)

    monkeypatch.setattr(BatchNormStatistics, "score", counted)
    objectives = [fs.channel("bn2", k) * 0.0 - prior for k in range(4)]
    result = fs.render(model, objectives, steps=30, lr=0.1, batch_size=4, transforms="none",
                       device="cpu", polish=0.0)
    assert calls == [4] * 32  # start, 30 steps, final: each once for the whole batch
    start = fs.render(model, objectives, steps=1, lr=1e-9, batch_size=4, transforms="none",
                      device="cpu", polish=0.0)
    assert (prior_of(model, result.images) < 0.5 * prior_of(model, start.images)).all()


def test_a_recipe_adds_the_prior_to_every_unit_and_reports_the_target_without_it(lite0):
    plain = fs.render(lite0, fs.class_logit(1), steps=3, size=64, device="cpu")
    with_prior = fs.render(lite0, fs.class_logit(1), steps=3, size=64, device="cpu",
                           bn_prior=0.01)
    # The start is the same image and its reported value is the class logit alone.
    assert with_prior.initial[0] == plain.initial[0]
    assert not torch.equal(with_prior.images, plain.images)
