import pytest
import torch

import featscope as fs
from featscope import FeatscopeError
from featscope.engine.probing import MODEL_OUTPUT
from featscope.objectives import batch_scores


def acts_4d():
    torch.manual_seed(1)
    return {"l": torch.randn(3, 5, 4, 4), MODEL_OUTPUT: torch.randn(3, 10)}


def test_channel_mean_and_max_pooling():
    acts = acts_4d()
    assert torch.allclose(fs.channel("l", 2)(acts), acts["l"][:, 2].mean((1, 2)))
    assert torch.allclose(fs.channel("l", 2, pool="max")(acts), acts["l"][:, 2].amax((1, 2)))


def test_neuron_reads_one_location_and_defaults_to_centre():
    acts = acts_4d()
    assert torch.equal(fs.neuron("l", 1, (0, 3))(acts), acts["l"][:, 1, 0, 3])
    assert torch.equal(fs.neuron("l", 1)(acts), acts["l"][:, 1, 2, 2])


@pytest.mark.parametrize("shape", [(3, 5), (3, 5, 7), (3, 5, 4, 4), (3, 5, 2, 3, 4)])
def test_channel_any_number_of_map_dims(shape):
    act = torch.randn(shape)
    expected = act[:, 4].reshape(3, -1).mean(1) if len(shape) > 2 else act[:, 4]
    assert torch.allclose(fs.channel("l", 4)({"l": act}), expected)


def test_channels_last_feature_axis():
    act = torch.randn(2, 7, 6)  # (B, T, C)
    value = fs.channel("l", 5, feature_axis=-1)({"l": act})
    assert torch.allclose(value, act[..., 5].mean(1))


def test_arithmetic_combines_scores():
    acts = acts_4d()
    a, b = fs.channel("l", 0), fs.channel("l", 1)
    combined = a - 0.5 * b + 2 * fs.class_logit(3) / 4
    expected = a(acts) - 0.5 * b(acts) + 0.5 * acts[MODEL_OUTPUT][:, 3]
    assert torch.allclose(combined(acts), expected)
    assert combined.layers == {"l", MODEL_OUTPUT}
    assert torch.allclose((-a)(acts), -a(acts))
    assert torch.allclose(sum([a, b])(acts), a(acts) + b(acts))
    with pytest.raises(TypeError):
        a * b


def test_class_probability_is_softmax():
    acts = acts_4d()
    assert torch.allclose(fs.class_probability(7)(acts), acts[MODEL_OUTPUT].softmax(1)[:, 7])


def test_direction_dot_and_cosine():
    acts = acts_4d()
    v = torch.randn(5)
    dot = fs.direction("l", v)(acts)
    assert torch.allclose(dot, torch.einsum("bchw,c->bhw", acts["l"], v).mean((1, 2)), atol=1e-6)
    cos = fs.direction("l", v, cosine=True)(acts)
    assert (cos.abs() <= 1).all()


def test_custom_objective():
    objective = fs.custom(lambda a: a["l"].pow(2).sum((1, 2, 3)), layers=["l"], name="energy")
    acts = acts_4d()
    assert torch.allclose(objective(acts), acts["l"].pow(2).sum((1, 2, 3)))
    assert objective.name == "energy"


def test_out_of_range_feature_says_valid_range():
    with pytest.raises(FeatscopeError, match=r"feature 9 is out of range.*5 features, valid 0..4"):
        fs.channel("l", 9)(acts_4d())
    with pytest.raises(FeatscopeError, match=r"outside layer 'l'"):
        fs.neuron("l", 0, (9, 9))(acts_4d())


def test_batch_scores_fast_path_equals_per_element_scores():
    acts = acts_4d()
    objectives = [fs.channel("l", 3), fs.neuron("l", 1, (1, 1)), fs.channel("l", 0, pool="max")]
    expected = torch.stack([o(acts)[i] for i, o in enumerate(objectives)])
    assert torch.allclose(batch_scores(objectives, acts), expected)
