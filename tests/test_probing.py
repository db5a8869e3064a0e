import pytest
import torch

from featscope import FeatscopeError, Probe, frozen, list_layers
from featscope.engine.probing import MODEL_OUTPUT

from .models import MLP, ConvNet


def test_hooks_only_on_probed_layers_and_removed_even_on_error():
    model = ConvNet()
    with Probe(model, ["conv1"]) as probe:
        assert len(model.conv1._forward_hooks) == 1
        assert all(not m._forward_hooks for n, m in model.named_modules() if n != "conv1")
        probe.run(torch.zeros(1, 3, 8, 8))
    assert not model.conv1._forward_hooks
    with pytest.raises(RuntimeError):
        with Probe(model, ["conv2"]) as probe:
            probe.run(torch.zeros(1, 5, 8, 8))  # wrong channel count
    assert not any(m._forward_hooks for m in model.modules())


def test_inplace_relu_does_not_corrupt_captured_values():
    model = ConvNet().eval()
    x = torch.randn(2, 3, 8, 8)
    expected = model.conv1(x)
    assert (expected < 0).any()
    with Probe(model, ["conv1", "conv2"]) as probe:
        acts = probe.run(x)
    assert torch.allclose(acts["conv1"], expected)


def test_stops_at_deepest_probed_layer():
    model = ConvNet()
    calls = []
    model.fc.register_forward_hook(lambda *a: calls.append("fc"))
    with Probe(model, ["conv2"]) as probe:
        probe.run(torch.zeros(1, 3, 8, 8))
    assert calls == []
    with Probe(model, ["conv2", MODEL_OUTPUT]) as probe:
        acts = probe.run(torch.zeros(1, 3, 8, 8))
    assert calls == ["fc"] and acts[MODEL_OUTPUT].shape == (1, 5)


def test_early_stop_gives_same_values_as_full_pass():
    model = ConvNet().eval()
    x = torch.randn(1, 3, 8, 8)
    with Probe(model, ["conv2"], stop_early=True) as fast, torch.no_grad():
        a = fast.run(x)["conv2"]
    with Probe(model, ["conv2"], stop_early=False) as full, torch.no_grad():
        b = full.run(x)["conv2"]
    assert torch.equal(a, b)


def test_unknown_layer_lists_nearest_names():
    with pytest.raises(FeatscopeError, match=r"unknown layer 'conv3'.*'conv1'.*featscope layers"):
        Probe(ConvNet(), ["conv3"])


def test_frozen_sets_eval_and_no_weight_grads_then_restores():
    model = MLP().train()
    model.fc2.weight.requires_grad_(False)
    with frozen(model):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
    assert model.training
    assert model.fc1.weight.requires_grad and not model.fc2.weight.requires_grad


def test_list_layers_shapes():
    layers = {info.name: info for info in list_layers(ConvNet(dims=1), torch.zeros(1, 3, 10))}
    assert layers["conv1"].shape == (8, 10) and layers["conv1"].features() == 8
    assert layers[MODEL_OUTPUT].shape == (5,)
    assert not any(m._forward_hooks for m in ConvNet().modules())
