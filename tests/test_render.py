import pytest
import torch
from torch import nn

import featscope as fs
from featscope import FeatscopeError

from .models import MLP, ChannelsLast, ConvNet, DetachedBranch, LinearUnit


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def test_linear_unit_optimum_under_norm_bound_is_recovered():
    model = LinearUnit()
    objectives = [fs.channel("fc", k) for k in range(4)]
    result = fs.render(model, objectives, input_shape=(16,), max_norm=2.0, steps=300, lr=0.05)
    for k in range(4):
        w = model.fc.weight[k].detach()
        assert cosine(result.images[k], w) > 0.999
        assert result.images[k].norm().item() == pytest.approx(2.0, rel=1e-3)
        assert result.final[k].item() == pytest.approx(2.0 * w.norm().item(), rel=1e-3)


def test_single_conv_neuron_optimum_is_its_kernel_in_its_receptive_field():
    torch.manual_seed(3)
    conv = nn.Sequential(nn.Conv2d(3, 2, 3))
    result = fs.render(conv, fs.neuron("0", 1, (1, 2)), input_shape=(3, 5, 5), param="tensor",
                       max_norm=1.0, steps=400, lr=0.05)
    expected = torch.zeros(3, 5, 5)
    expected[:, 1:4, 2:5] = conv[0].weight[1].detach()
    assert cosine(result.images[0], expected) > 0.99


@pytest.mark.parametrize("build, shape, layer", [
    (MLP, (8,), "fc1"),
    (lambda: ConvNet(dims=1), (3, 32), "conv2"),
    (lambda: ConvNet(dims=2, channels=1), (1, 16, 16), "conv2"),
    (lambda: ConvNet(dims=2), (3, 16, 16), "conv2"),
    (lambda: ConvNet(dims=3), (3, 6, 8, 8), "conv2"),
])
def test_any_number_of_map_dims_renders_input_shaped_result(build, shape, layer):
    torch.manual_seed(0)
    model = build()
    objectives = [fs.channel(layer, 0), fs.channel(layer, 1, pool="max")]
    result = fs.render(model, objectives, input_shape=shape, steps=40, lr=0.1, transforms="none")
    assert result.images.shape == (2, *shape)
    assert result.history.shape == (40, 2)
    # The search beats the best of 64 random inputs from the same domain.
    image_like = len(shape) == 3 and shape[0] in (1, 3)
    randoms = torch.rand(64, *shape) if image_like else torch.randn(64, *shape)
    with fs.Probe(model, [layer]) as probe, torch.no_grad():
        acts = probe.run(randoms)
    for objective, final in zip(objectives, result.final):
        assert final > objective(acts).max()


def test_max_pooling_and_average_pooling_optimize_different_things():
    torch.manual_seed(0)
    model = ConvNet(dims=1)
    common = dict(input_shape=(3, 32), param="tensor", max_norm=3.0, steps=300, lr=0.05)
    by_mean = fs.render(model, fs.channel("conv1", 2, pool="mean"), **common).images
    by_max = fs.render(model, fs.channel("conv1", 2, pool="max"), **common).images
    with torch.no_grad():
        maps = model.conv1(torch.cat([by_mean, by_max]))[:, 2]
    assert maps[0].mean() > maps[1].mean()
    assert maps[1].amax() > maps[0].amax()


def test_channels_last_layer():
    result = fs.render(ChannelsLast(), fs.channel("proj", 2, feature_axis=-1), input_shape=(5, 4),
                       steps=50, lr=0.1)
    assert result.final[0] > result.initial[0] + 1.0


def test_same_seed_same_result_other_seed_other_result():
    model = ConvNet()
    run = lambda seed: fs.render(model, fs.channel("conv2", 3), input_shape=(3, 16, 16),
                                 steps=10, seed=seed).images
    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def test_model_weights_untouched_and_left_as_found():
    model = ConvNet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fs.render(model, fs.class_logit(1), input_shape=(3, 16, 16), steps=5)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_target_without_differentiable_path_is_reported():
    with pytest.raises(FeatscopeError, match="do not depend on the input"):
        fs.render(DetachedBranch(), fs.channel("const", 0), input_shape=(3, 8, 8), steps=3)


def test_zero_gradient_is_flagged():
    class Dead(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Identity()

        def forward(self, x):
            return self.out(x.flatten(1)[:, :2] * 0.0)

    result = fs.render(Dead(), fs.channel("out", 0), input_shape=(4,), steps=3)
    assert result.zero_gradient == [True]


def test_batch_size_chunks_give_one_result_per_target():
    model = ConvNet()
    result = fs.render(model, [fs.channel("conv2", k) for k in range(5)], input_shape=(3, 12, 12),
                       steps=5, batch_size=2)
    assert result.images.shape[0] == 5 and len(result.targets) == 5
    assert result.history.shape == (5, 5)


def test_plain_module_needs_input_shape():
    with pytest.raises(FeatscopeError, match="input_shape"):
        fs.render(ConvNet(), fs.channel("conv2", 0))



def test_fast_paths_give_the_same_objective_values_as_the_plain_path():
    torch.manual_seed(0)
    model = ConvNet()
    objectives = [fs.channel("conv1", 1), fs.channel("conv1", 4), fs.neuron("conv1", 2, (3, 3))]
    common = dict(input_shape=(3, 16, 16), steps=12, seed=3)
    early = fs.render(model, objectives, stop_early=True, **common)
    full = fs.render(model, objectives, stop_early=False, **common)
    assert torch.allclose(early.history, full.history)
    assert torch.allclose(early.final, full.final)
    # Batching: the first target of a batch starts from the same noise as a batch of one,
    # and every target's search is independent of the others. (Adam turns float rounding
    # differences of batched convolutions into small step differences, hence the tolerance.)
    alone = fs.render(model, objectives[:1], **common)
    assert torch.allclose(early.initial[0], alone.initial[0], rtol=1e-5)
    assert torch.allclose(early.history[:, 0], alone.history[:, 0], rtol=2e-2)


def test_mixed_precision_keeps_model_and_search_in_float32():
    torch.manual_seed(0)
    model = ConvNet()
    common = dict(input_shape=(3, 16, 16), steps=10, seed=1)
    fp32 = fs.render(model, fs.channel("conv2", 1), **common)
    bf16 = fs.render(model, fs.channel("conv2", 1), precision="bfloat16", **common)
    assert bf16.final.dtype == torch.float32 and bf16.images.dtype == torch.float32
    assert torch.allclose(bf16.final, fp32.final, rtol=0.05, atol=0.01)
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in model.parameters())
    with pytest.raises(FeatscopeError, match="unknown precision"):
        fs.render(model, fs.channel("conv2", 1), precision="int8", **common)


def test_default_batch_on_a_cpu_holds_about_one_224_px_image(lite0):
    cpu = torch.device("cpu")
    assert fs.default_batch_size(lite0, cpu) == 1
    small = fs.LoadedModel(ConvNet(), "small", (3, 32, 32))
    assert fs.default_batch_size(small, cpu) == 49
    assert fs.default_batch_size(small, cpu, views=7) == 7
    assert fs.default_batch_size(small, torch.device("meta")) == 32  # any accelerator


def test_unset_batch_size_renders_in_default_chunks_seeded_in_order():
    torch.manual_seed(0)
    model = ConvNet()
    objectives = [fs.channel("conv2", k) for k in range(3)]
    common = dict(input_shape=(3, 224, 224), steps=2, seed=5)  # 224 px: one unit per batch
    auto = fs.render(model, objectives, **common)
    explicit = fs.render(model, objectives, batch_size=1, **common)
    assert auto.targets == [o.name for o in objectives]
    assert torch.equal(auto.images, explicit.images)


class _ViewsFeatureMaps(torch.nn.Module):
    """``.view`` of a conv output: fails on channels-last feature maps."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(h.view(h.shape[0], -1))


def test_model_that_needs_contiguous_maps_still_renders_on_cpu():
    torch.manual_seed(0)
    model = _ViewsFeatureMaps()
    with pytest.raises(RuntimeError):  # the failure the fallback is for
        model(torch.rand(1, 3, 8, 8).contiguous(memory_format=torch.channels_last))
    result = fs.render(model, fs.class_logit(1), input_shape=(3, 8, 8), steps=20,
                       transforms="none", device="cpu")
    assert result.final[0] > result.initial[0]
    assert all(p.is_contiguous() for p in model.parameters())


def test_auto_preset_renders_classes_legibly_and_units_in_full_detail():
    assert fs.preset_for(fs.class_logit(3)) == "legible"
    assert fs.preset_for(fs.channel("conv2", 0)) == "featscope"
    assert fs.preset_for(fs.class_logit(3), "lucid") == "lucid"
    torch.manual_seed(0)
    model = ConvNet()
    common = dict(input_shape=(3, 32, 32), steps=3)
    targets = [fs.channel("conv2", 0), fs.class_logit(2), fs.channel("conv2", 1)]
    mixed = fs.render(model, targets, seed=4, **common)
    assert mixed.targets == [t.name for t in targets]
    # Each target is rendered as its own preset would, with its own seed (the same alone).
    legible = fs.render(model, targets[1], preset="legible", seed=4, **common)
    units = fs.render(model, [targets[0], targets[2]], preset="featscope", seed=4,
                      batch_size=1, **common)
    assert torch.equal(mixed.images[1], legible.images[0])
    # The two units share a batch in the mixed run: equal up to float rounding (1e-6 here).
    assert torch.allclose(mixed.images[0], units.images[0], atol=1e-5)
