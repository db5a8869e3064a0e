"""Batch norms folded into convolutions for a search: same values, original model restored."""

import pytest
import torch
from torch import nn

import featscope as fs
from featscope.engine.fusion import batchnorms_folded
from featscope.engine.probing import Probe, frozen


def _norm(channels: int, **kwargs) -> nn.BatchNorm2d:
    """A norm with running statistics far from the identity, so folding it matters."""
    norm = nn.BatchNorm2d(channels, **kwargs)
    if norm.running_mean is not None:
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.5, 0.5)
    return norm


class ConvBnNet(nn.Module):
    """conv1 -> bn1 -> ReLU -> conv2 -> bn2, plus ``skip``: conv2's output also added after bn2."""

    def __init__(self, skip: bool = False, running_stats: bool = True):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 6, 3, padding=1), _norm(6)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = _norm(6, track_running_stats=running_stats)
        self.skip = skip

    def forward(self, x):
        h = self.conv2(self.relu(self.bn1(self.conv1(x))))
        return self.bn2(h) + h if self.skip else self.bn2(h)


def _values(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    with Probe(model, layers) as probe, torch.no_grad():
        return {k: v.clone() for k, v in probe.run(x).items()}


@pytest.mark.parametrize("layer", ["bn2", "relu", "bn1"])
def test_folded_model_gives_the_same_values_and_is_restored_after(layer):
    torch.manual_seed(0)
    model, x = ConvBnNet(), torch.randn(2, 3, 12, 12)
    originals = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with frozen(model):
        expected = _values(model, x, [layer])
        with batchnorms_folded(model, x[:1], [layer]) as pairs:
            assert ("conv1", "bn1") in pairs
            assert isinstance(model.bn1, nn.Identity)
            folded = _values(model, x, [layer])
    assert torch.allclose(folded[layer], expected[layer], rtol=1e-4, atol=1e-5)
    assert dict(model.named_modules()) == originals  # the very same module objects
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_probed_convolution_keeps_its_norm():
    torch.manual_seed(0)
    model, x = ConvBnNet(), torch.randn(1, 3, 12, 12)
    with frozen(model), batchnorms_folded(model, x, ["conv2", "bn2"]) as pairs:
        assert pairs == [("conv1", "bn1")]
        assert isinstance(model.bn2, nn.BatchNorm2d)


def test_convolution_read_elsewhere_too_is_not_folded():
    """conv2's output also feeds a residual sum: folding bn2 would change that sum."""
    torch.manual_seed(0)
    model, x = ConvBnNet(skip=True), torch.randn(1, 3, 12, 12)
    with frozen(model):
        expected = _values(model, x, [""])
        with batchnorms_folded(model, x, [""]) as pairs:
            assert pairs == []
            assert torch.allclose(_values(model, x, [""])[""], expected[""])
    assert isinstance(model.bn2, nn.BatchNorm2d) and isinstance(model.conv2, nn.Conv2d)


def test_norm_without_running_statistics_is_not_folded():
    torch.manual_seed(0)
    model, x = ConvBnNet(running_stats=False), torch.randn(1, 3, 12, 12)
    with frozen(model), batchnorms_folded(model, x, [""]) as pairs:
        assert pairs == [("conv1", "bn1")]


def test_render_with_and_without_folding_agree():
    torch.manual_seed(0)
    model = ConvBnNet()
    common = dict(input_shape=(3, 16, 16), steps=6, seed=2)
    targets = [fs.channel("bn2", 1), fs.channel("relu", 3)]
    folded = fs.render(model, targets, **common)
    plain = fs.render(model, targets, fold_batchnorm=False, **common)
    assert torch.allclose(folded.initial, plain.initial, rtol=1e-4)
    assert torch.allclose(folded.history[0], plain.history[0], rtol=1e-4)
    assert torch.allclose(folded.final, plain.final, rtol=1e-2)
    assert isinstance(model.bn1, nn.BatchNorm2d) and isinstance(model.bn2, nn.BatchNorm2d)


def test_embedded_model_folds_every_norm_before_the_probed_layer(lite0):
    x = torch.rand(1, 3, 224, 224)
    with frozen(lite0.module), batchnorms_folded(lite0.module, x, ["_blocks.1"]) as pairs:
        # stem + block 0 (depthwise, project) + block 1 (expand, depthwise, project)
        assert len(pairs) == 6


def test_the_folds_check_runs_in_exact_float32_and_leaves_tf32_as_it_was():
    # On CUDA, TF32 convolutions (PyTorch's default there) rounded ResNet-50's layers enough
    # for the folded values to fail the check, and nothing was folded on GPUs: the check's
    # passes run with TF32 off, the search itself with the caller's setting.
    torch.manual_seed(0)
    model, x = ConvBnNet(), torch.randn(1, 3, 12, 12)
    seen: list[bool] = []
    model.relu.register_forward_hook(  # (the relu stays in place when the norms fold)
        lambda *_: seen.append(torch.backends.cudnn.allow_tf32))
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with frozen(model), batchnorms_folded(model, x, ["bn2"]) as pairs:
            assert pairs and seen == [False, False]  # the check's two passes
            assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
