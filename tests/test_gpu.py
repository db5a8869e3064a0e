"""On a CUDA GPU only: a step captured as a CUDA graph gives the plain step's objective values
and images, no step waits for the GPU, fused Adam is Adam, the default batch fits. Skipped
without one; ``bench/gpu_check.sh`` runs them on one. (What the CPU can check of the same
paths is in test_fast_path.py, test_architecture.py and test_hardening.py.)"""

import math
import warnings

import pytest
import torch
from torch import nn

import featscope as fs
from featscope.engine import GradientSearch, NonFiniteError
from featscope.rendering import default_batch_size
from featscope.rendering.batch import GRAPH_WARMUP

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Stated tolerance, graphs against the plain step: two eager runs already differ in the last
# bits (atomic adds in grid_sample's backward), and the graph's Adam keeps its step count on
# the device; over a search that drift stays within 1 % of the objective and 35 dB of PSNR,
# as between batch sizes (test_architecture.py).
OBJECTIVE_RTOL = 0.01
MIN_PSNR_DB = 35.0


class Net(nn.Module):
    """Convolutions with a batch norm (folded for the search) on 3x48x48 images."""

    input_shape = (3, 48, 48)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16).eval()
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv2(self.relu(self.bn(self.conv1(x))))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a - b).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def captured(render, *args, **kwargs):
    """``render(...)``, failing if a step could not be captured (that only warns)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*CUDA graph.*")
        return render(*args, **kwargs)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_captured_step_gives_the_plain_steps_values_and_images(precision):
    objectives = [fs.channel("conv2", k) for k in range(8)]
    common = {"steps": 30, "seed": 3, "device": "cuda", "batch_size": 8, "precision": precision}
    graphed = captured(fs.render, Net(), objectives, graphs=True, **common)
    plain = fs.render(Net(), objectives, **common)
    assert torch.isfinite(graphed.history).all()
    assert graphed.history.shape == plain.history.shape == (30, 8)
    assert torch.allclose(graphed.final, plain.final, rtol=OBJECTIVE_RTOL)
    assert all(psnr(a, b) >= MIN_PSNR_DB for a, b in zip(graphed.images, plain.images))


# The embedded model: the captured and the plain search drift apart in the last bits
# (grid_sample's backward adds atomically) and a search amplifies that drift. After 24 steps
# their objectives were 1.0-1.3 % apart on one of 4 units (an H100, 2026-11-27, also with cuDNN
# in exact float32 and deterministic algorithms), and the test below passed at 3 % and 25 dB.
# Earlier in the search the objectives are small and change fast, so they are further apart
# relatively: after 7 steps 0.02-4.5 % (the same H100, 2026-11-27).
EMBEDDED_RTOL = 0.03
EMBEDDED_PSNR_DB = 25.0


def test_a_captured_step_on_the_embedded_model(lite0):
    objectives = [fs.channel("_blocks.8", k) for k in range(4)]
    common = {"steps": 24, "seed": 1, "device": "cuda", "batch_size": 4,
              "precision": "float32"}
    graphed = captured(fs.render, lite0, objectives, graphs=True, **common)
    plain = fs.render(lite0, objectives, **common)
    apart = ((graphed.final - plain.final).abs() / plain.final.abs()).tolist()
    psnrs = [psnr(a, b) for a, b in zip(graphed.images, plain.images)]
    assert max(apart) <= EMBEDDED_RTOL, f"objectives apart by {apart}"
    assert min(psnrs) >= EMBEDDED_PSNR_DB, f"PSNR {psnrs} dB"


def test_the_batch_norms_of_resnet50_fold_on_cuda():
    # Checked in exact float32: with TF32 convolutions the folded layer3 differed from the
    # original beyond the check's tolerance and nothing was folded on GPUs.
    torchvision = pytest.importorskip("torchvision")
    from featscope.engine.fusion import batchnorms_folded
    from featscope.engine.probing import frozen
    model = torchvision.models.resnet50().cuda()
    example = torch.rand(1, 3, 224, 224, device="cuda")
    tf32 = torch.backends.cudnn.allow_tf32
    with frozen(model), batchnorms_folded(model, example, ["layer3.5"]) as pairs:
        assert len(pairs) == 43  # every convolution before layer3.5's output with its norm
    assert torch.backends.cudnn.allow_tf32 == tf32


def test_auto_precision_is_bfloat16_on_gpus_that_compute_it():
    from featscope.engine import resolve_precision
    native = torch.cuda.get_device_capability() >= (8, 0)
    assert resolve_precision("auto", torch.device("cuda")) == (
        "bfloat16" if native else "float32")
    assert resolve_precision("float32", torch.device("cuda")) == "float32"


@pytest.mark.parametrize("graphs", [False, True])
def test_no_step_of_the_loop_waits_for_the_gpu(graphs):
    # Without graphs every step; with graphs every step after the capture (which syncs once).
    first, steps = (GRAPH_WARMUP + 1 if graphs else 0), 30

    def on_step(step: int, values: torch.Tensor) -> None:
        if step == first:
            torch.cuda.set_sync_debug_mode("error")
        if step == steps - 1:
            torch.cuda.set_sync_debug_mode("default")

    try:
        result = captured(fs.render, Net(), [fs.channel("conv2", k) for k in range(4)],
                          steps=steps, polish=0.0, device="cuda", graphs=graphs,
                          on_step=on_step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(result.history).all()


def test_gradient_search_replays_its_captured_step_and_still_stops_at_nan():
    def run(graph_after, check_every):
        v = torch.linspace(-0.5, 0.5, 32, device="cuda").reshape(4, 8)
        def optimizer(params):
            return torch.optim.Adam(params, lr=0.1, capturable=True, fused=True)

        search = GradientSearch([v], maximize=True, optimizer=optimizer, batched=True,
                                check_every=check_every, graph_after=graph_after)
        # Ascent moves each v up by about lr a step; log(3 - v) is NaN once one passes 3,
        # some 25 steps after the capture.
        def f():
            return (v + 0.01 * torch.log(3 - v)).sum(1)

        try:
            for _ in range(60):
                search.step(f)
            search.check()
        except NonFiniteError as error:
            return search, v, error
        raise AssertionError("the search never met NaN")

    graphed, v_graphed, error_graphed = run(3, 8)
    plain, v_plain, error_plain = run(None, 1)
    assert graphed.graphed and not plain.graphed
    assert error_graphed.step == error_plain.step > GRAPH_WARMUP
    assert torch.allclose(v_graphed, v_plain, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(v_graphed).all()


def test_fused_adam_on_the_gpu_is_adam():
    results = []
    for fused in (True, False):
        v = torch.linspace(-1, 1, 64, device="cuda").reshape(8, 8)
        search = GradientSearch([v], maximize=True, batched=True, optimizer=lambda p, f=fused:
                                torch.optim.Adam(p, lr=0.05, fused=f))
        for _ in range(50):
            search.step(lambda v=v: -((v - 0.3) ** 2).sum(1))
        results.append(v)
    assert torch.allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_the_default_gpu_batch_is_sized_from_free_memory_and_renders():
    loaded = fs.rendering.as_loaded(Net())
    batch = default_batch_size(loaded, torch.device("cuda"), 1, ["conv2"])
    assert 32 < batch <= 256  # this small model's units fit by the hundred
    result = fs.render(Net(), [fs.channel("conv2", k % 32) for k in range(batch)], steps=3,
                       device="cuda")
    assert result.units[0].batch == [u.label for u in result.units]  # one batch
