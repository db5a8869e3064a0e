"""One plan, per-unit randomness, composable terms, step hooks: the architecture's promises."""

import math

import pytest
import torch
from torch import nn

import featscope as fs
import featscope.transforms as tf
from featscope.engine import GradientSearch
from featscope.objectives import BatchScorer, Closeness, Diversity
from featscope.randomness import UnitRandom, step_draws
from featscope.rendering import Pipeline, make_units, plan_batches, recipe
from featscope.transforms import CropSchedule

# Stated tolerance: a unit rendered in another batch ends within float drift of itself.
OBJECTIVE_RTOL = 0.01
MIN_PSNR_DB = 35.0


class Wide(nn.Module):
    """32 channels on 3x32x32 images: enough units for a batch of 32."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a - b).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def test_a_unit_starts_identically_and_ends_the_same_alone_in_8_and_in_32():
    model = Wide()
    objectives = [fs.channel("conv2", k) for k in range(32)]
    loaded = fs.rendering.as_loaded(model)
    units = make_units(objectives, seed=7)
    chosen = recipe("featscope", steps=30)
    starts = [Pipeline(loaded, chosen, UnitRandom([u.seed for u in units[:n]]),
                       torch.device("cpu")).image()[0] for n in (1, 8, 32)]
    assert torch.equal(starts[0], starts[1]) and torch.equal(starts[0], starts[2])

    common = dict(steps=30, seed=7, device="cpu")
    alone = fs.render(model, objectives[:1], batch_size=1, **common)
    in_8 = fs.render(model, objectives[:8], batch_size=8, **common)
    in_32 = fs.render(model, objectives, batch_size=32, **common)
    for other in (in_8, in_32):
        assert other.units[0].batch == [u.label for u in other.units]  # really batched
        assert other.final[0] == pytest.approx(float(alone.final[0]), rel=OBJECTIVE_RTOL)
        assert psnr(other.images[0], alone.images[0]) >= MIN_PSNR_DB


def test_the_sync_free_step_gives_the_plain_images_and_keeps_units_independent():
    # graphs=True is the step a CUDA graph captures (transforms drawn ahead, the NaN check kept
    # on the device); on a CPU it runs uncaptured and gives exactly the plain step's numbers.
    # On CUDA, tests/test_gpu.py compares the captured graph with it.
    model = Wide()
    objectives = [fs.channel("conv2", k) for k in range(8)]
    common = {"steps": 30, "seed": 7, "device": "cpu"}
    plain = fs.render(model, objectives, batch_size=8, **common)
    fast = fs.render(model, objectives, batch_size=8, graphs=True, **common)
    alone = fs.render(model, objectives[:1], batch_size=1, graphs=True, **common)
    assert torch.equal(fast.images, plain.images) and torch.equal(fast.history, plain.history)
    assert fast.final[0] == pytest.approx(float(alone.final[0]), rel=OBJECTIVE_RTOL)
    assert psnr(fast.images[0], alone.images[0]) >= MIN_PSNR_DB


@pytest.mark.parametrize("layout", [
    (("rand", (2,)), ("rand", (1,)), ("rand", (1,)), ("rand", (2,))),  # random_affine's
    (("rand", (3,)), ("randn", (3, 2)), ("rand", (3,)), ("randn", (3, 2, 4, 4))),  # crops'
])
def test_draws_made_ahead_are_each_steps_draws_in_turn(layout):
    seeds = [make_units([fs.channel("conv2", k)], seed=1)[0].seed for k in range(3)]
    stepwise, ahead = UnitRandom(seeds), UnitRandom(seeds)
    expected = [step_draws(stepwise, 3, layout) for _ in range(5)]
    drawn = ahead.ahead(5, layout)
    for step, draws in enumerate(expected):
        for entry, draw in enumerate(draws):
            assert torch.equal(drawn[entry][step], draw)
    assert torch.equal(stepwise.rand(4), ahead.rand(4))  # the generators end alike


@pytest.mark.parametrize("transform", [
    tf.random_affine(24, (32, 32)),
    tf.crop_transform(CropSchedule(3, (0.4, 1.2), (0.2, 0.5), spread=0.2, rotate=10, noise=0.1),
                      (16, 16), 3),
    tf.crop_transform(CropSchedule(2, (0.5, 1.0), (0.5, 1.0)), (20, 20), 3),
])
def test_transforms_planned_ahead_give_each_steps_transform(transform):
    # Stated tolerance: the parameters of all steps are computed in one vectorized pass, whose
    # cos/sin may round differently from one step's: 1e-5 of the [0, 1] image at most.
    torch.manual_seed(0)
    image = torch.rand(2, 3, 24, 24)
    seeds = [11, 12]
    progress = [step / 4 for step in range(5)]
    stepwise = UnitRandom(seeds)
    expected = [transform(image, stepwise, p) for p in progress]
    planned = tf.plan(transform, UnitRandom(seeds), progress, (24, 24))
    index = torch.zeros(1, dtype=torch.long)
    for step, want in enumerate(expected):
        index.fill_(step)
        got = transform.apply(image, tf.step_parameters(planned, index))
        assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_two_units_never_share_a_start_and_copies_differ():
    units = make_units([fs.channel("conv2", k) for k in range(32)] + [fs.channel("conv2", 0)] * 3,
                       seed=0)
    assert len({u.seed for u in units}) == len(units)
    assert [u.label for u in units[-3:]] == ["conv2:0#1", "conv2:0#2", "conv2:0#3"]
    images = Pipeline(fs.rendering.as_loaded(Wide()), recipe("featscope"),
                      UnitRandom([u.seed for u in units]), torch.device("cpu")).image()
    flat = images.flatten(1)
    same = (flat[:, None] == flat[None]).all(-1)
    assert same.sum() == len(units)  # only each with itself


def test_each_unit_draws_its_own_transforms_whatever_its_batch():
    loaded = fs.rendering.as_loaded(Wide())
    units = make_units([fs.channel("conv2", k) for k in range(8)], seed=3)
    chosen = recipe("featscope")
    views = []
    for batch in (units[:1], units):
        pipe = Pipeline(loaded, chosen, UnitRandom([u.seed for u in batch]), torch.device("cpu"))
        views.append(pipe.model_input(pipe.image(), augment=True))
    assert torch.equal(views[0][0], views[1][0])
    assert not torch.equal(views[1][0], views[1][1])


def test_the_plan_keeps_copies_together_and_groups_by_preset_and_layer():
    loaded = fs.rendering.as_loaded(Wide())
    objectives = [fs.channel("conv2", 0)] * 3 + [fs.channel("conv1", 1), fs.channel("conv2", 5)]
    batches = plan_batches(make_units(objectives, seed=0), preset="featscope",
                           overrides={"diversity": 1.0}, loaded=loaded,
                           device=torch.device("cpu"), batch_size=4)
    assert [b.labels for b in batches] == [["conv2:0", "conv2:0#1", "conv2:0#2", "conv2:5"],
                                          ["conv1:1"]]
    with pytest.raises(fs.FeatscopeError, match="at least 3"):
        plan_batches(make_units(objectives, seed=0), preset="featscope",
                     overrides={"diversity": 1.0}, loaded=loaded, device=torch.device("cpu"),
                     batch_size=2)


def test_a_term_shared_by_every_unit_is_evaluated_once_per_step():
    calls = []

    def shared(acts):
        calls.append(acts["conv1"].shape[0])
        return acts["conv1"].pow(2).mean((1, 2, 3))

    prior = fs.custom(shared, ["conv1"], name="prior")
    objectives = [fs.channel("conv2", k) - 0.1 * prior for k in range(20)]
    result = fs.render(Wide(), objectives, steps=5, batch_size=20, device="cpu")
    # The start, 5 steps and the final image: 7 evaluations, each of the whole batch.
    assert calls == [20] * 7
    assert (result.final > result.initial).all()


def test_penalties_are_terms_scored_on_the_elements_that_share_them():
    torch.manual_seed(0)
    image = torch.rand(4, 3, 8, 8)
    acts = {"@image": image, "l": torch.rand(8, 5, 2, 2)}  # two views per element
    start = torch.rand(3, 8, 8)
    closeness, together = Closeness(start), Diversity("l")
    objectives = [fs.channel("l", 0) - 2.0 * closeness - together,
                  fs.channel("l", 1) - 2.0 * closeness - together,
                  fs.channel("l", 2), fs.channel("l", 3) - 2.0 * closeness]
    scores = BatchScorer(objectives, views=2).evaluate(acts)
    targets = torch.stack([acts["l"][2 * i:2 * i + 2, k].mean() for i, k in enumerate(range(4))])
    assert torch.allclose(scores.target, targets, atol=1e-6)
    distance = (image - start).pow(2).flatten(1).mean(1)
    pair = Diversity("l").score(fs.objectives.Activations({"l": acts["l"][:4]}, views=2))
    expected = targets - 2.0 * distance * torch.tensor([1, 1, 0, 1.0])
    expected[:2] -= pair
    assert torch.allclose(scores.total, expected, atol=1e-6)


def test_step_hooks_run_before_and_after_each_step_and_can_be_removed():
    v = torch.zeros(3)
    search = GradientSearch([v], maximize=True, lr=0.1, batched=True)
    seen = []
    before = search.register_step_pre_hook(lambda s, step: seen.append(("pre", step)))
    search.register_step_post_hook(lambda s, step, values: seen.append(("post", step,
                                                                        tuple(values.shape))))
    for _ in range(2):
        search.step(lambda: -(v - 1) ** 2)
    before.remove()
    search.step(lambda: -(v - 1) ** 2)
    assert seen == [("pre", 0), ("post", 0, (3,)), ("pre", 1), ("post", 1, (3,)), ("post", 2, (3,))]


@pytest.mark.parametrize("module, name", [("featscope.dataset", "top_examples"),
                                          ("featscope.accentuation", "accentuate"),
                                          ("featscope.metrics", "robustness")])
def test_documented_old_names_work_for_one_release_and_warn(module, name):
    import importlib
    import sys

    sys.modules.pop(module, None)
    with pytest.warns(DeprecationWarning, match=module):
        old = importlib.import_module(module)
    assert callable(getattr(old, name))
