import math

import pytest
import torch

from featscope.engine import GradientSearch, NonFiniteError, ascend, descend


def test_descent_reaches_minimum_of_quadratic():
    target = torch.tensor([1.0, -2.0, 3.0])
    v = torch.zeros(3)
    result = descend(lambda: ((v - target) ** 2).sum(), [v], steps=200, lr=0.1)
    assert torch.allclose(result.variables[0], target, atol=1e-4)
    assert result.history[0] > result.history[-1]


def test_ascent_reaches_maximum_of_concave_function():
    v = torch.tensor([5.0, -5.0])
    result = ascend(lambda: -((v - 0.5) ** 2).sum() + 7.0, [v], steps=300, lr=0.1)
    assert torch.allclose(v, torch.tensor([0.5, 0.5]), atol=1e-4)
    assert result.final == pytest.approx(7.0, abs=1e-6)


@pytest.mark.parametrize("maximize, expected", [(True, 1.0 + 0.1 * 2.0), (False, 1.0 - 0.1 * 2.0)])
def test_plain_rule_sign(maximize, expected):
    # F(v) = v^2 at v = 1 has dF/dv = 2: ascent adds lr * 2, descent subtracts it.
    v = torch.tensor([1.0])
    engine = GradientSearch([v], maximize=maximize, lr=0.1)
    value = engine.step(lambda: v ** 2)
    assert value == pytest.approx(1.0)
    assert v.item() == pytest.approx(expected)


def test_any_torch_optimizer_and_factory():
    for optimizer in (torch.optim.Adam,
                      lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)):
        v = torch.tensor([4.0, 4.0])
        result = descend(lambda: (v ** 2).sum(), [v], steps=400, lr=0.1, optimizer=optimizer)
        assert result.final < 1e-3


def test_ascent_with_optimizer_maximizes():
    v = torch.tensor([0.0])
    ascend(lambda: -(v - 2.0) ** 2, [v], steps=300, lr=0.05, optimizer=torch.optim.Adam)
    assert v.item() == pytest.approx(2.0, abs=1e-2)


def test_several_variables_not_weights():
    a, b = torch.tensor([3.0]), torch.tensor([-1.0])
    descend(lambda: (a - 1) ** 2 + (b + 4) ** 2 + a * 0, [a, b], steps=300, lr=0.1)
    assert a.item() == pytest.approx(1.0, abs=1e-4) and b.item() == pytest.approx(-4.0, abs=1e-4)


def test_non_finite_stops_with_step_and_keeps_last_finite_values():
    v = torch.tensor([1.0])
    calls = {"n": 0}

    def f():
        calls["n"] += 1
        return torch.log(v) if calls["n"] < 4 else v * math.inf

    with pytest.raises(NonFiniteError, match="step 3") as info:
        ascend(f, [v], steps=10, lr=0.1)
    assert info.value.step == 3 and len(info.value.history) == 3
    assert torch.isfinite(v).all()


def test_normalized_gradient_step_has_length_lr():
    v = torch.zeros(1, 4)
    GradientSearch([v], maximize=True, lr=10.0, grad_norm="l2").step(lambda: (v * torch.tensor([3.0, 4.0, 0, 0])).sum())
    assert v.norm().item() == pytest.approx(10.0)
    assert v[0, :2].tolist() == pytest.approx([6.0, 8.0])


def test_function_without_dependency_is_rejected():
    v = torch.zeros(2)
    with pytest.raises(ValueError, match="does not depend"):
        GradientSearch([v]).step(lambda: torch.ones(()))


@pytest.mark.parametrize("check_every", [1, 4, 100])
def test_deferred_nan_check_stops_at_the_same_step_with_the_same_finite_values(check_every):
    # The failure at step 5 is seen at the next check (step 8, or the end with 100), and the
    # updates of steps 5-7 are undone on the device: the same state as checking every step.
    v = torch.tensor([1.0, 2.0])
    calls = {"n": 0}

    def f():
        calls["n"] += 1
        return -((v - 3) ** 2).sum() if calls["n"] <= 5 else v.sum() * math.inf

    engine = GradientSearch([v], maximize=True, lr=0.1, optimizer=torch.optim.Adam,
                            check_every=check_every)
    with pytest.raises(NonFiniteError, match="step 5") as info:
        for _ in range(10):
            engine.step(f)
        engine.check()
    assert info.value.step == 5 and len(info.value.history) == 5
    expected = torch.tensor([1.0, 2.0])
    reference = GradientSearch([expected], maximize=True, lr=0.1, optimizer=torch.optim.Adam)
    for _ in range(5):
        reference.step(lambda: -((expected - 3) ** 2).sum())
    assert torch.equal(v, expected)
    assert info.value.history == reference.history


def test_a_deferred_check_gives_the_same_search_and_history_when_all_is_finite():
    runs = []
    for check_every in (1, 7):
        v = torch.linspace(-1, 1, 6).reshape(2, 3)
        result = descend(lambda: ((v - 0.5) ** 4).sum(), [v], steps=20, lr=0.05,
                         optimizer=torch.optim.Adam, check_every=check_every)
        runs.append(result)
    assert torch.equal(runs[0].variables[0], runs[1].variables[0])
    assert runs[0].history == runs[1].history and len(runs[1].history) == 20


def test_a_deferred_step_returns_none_and_history_is_read_when_asked():
    v = torch.tensor([1.0])
    engine = GradientSearch([v], check_every=3)
    assert engine.step(lambda: v ** 2) is None
    assert engine.history == [pytest.approx(1.0)]


def test_cuda_graphs_need_a_deferred_check_and_cuda_variables():
    with pytest.raises(ValueError, match="check_every"):
        GradientSearch([torch.zeros(2)], graph_after=3)
    with pytest.raises(ValueError, match="CUDA"):
        GradientSearch([torch.zeros(2)], check_every=8, graph_after=3)


@pytest.mark.parametrize("check_every", [1, 4])
def test_a_projected_search_stays_in_its_domain_and_reaches_the_constrained_optimum(check_every):
    # max -(v - 2)^2 with v in [0, 1]: the optimum is v = 1, on the boundary; one variable
    # starts inside, one on the other bound (0), and both end exactly on the optimum.
    v = torch.tensor([0.5, 0.0])
    seen = []
    engine = GradientSearch([v], maximize=True, lr=0.1, optimizer=torch.optim.Adam,
                            check_every=check_every, project=lambda: v.clamp_(0, 1))
    engine.register_step_post_hook(lambda search, step, values: seen.append(v.clone()))
    for _ in range(40):
        engine.step(lambda: -((v - 2.0) ** 2).sum())
    engine.check()
    assert all(((s >= 0) & (s <= 1)).all() for s in seen)  # every update, hooks see it
    assert torch.equal(v, torch.ones(2))
    assert engine.history[-1] == pytest.approx(-2.0)
