"""What makes a search fast on a GPU, checked on the CPU: the fused optimizer gives the same
search, the batch size follows free memory and the layer's activations, a batch is written
while the next renders. (The sync-free step
and the transforms drawn ahead are in test_architecture.py and test_hardening.py; the CUDA
graph itself, which needs a GPU, is in test_gpu.py.)"""

import gc
import threading
import time
import warnings

import pytest
import torch
from torch import nn

import featscope as fs
from featscope.engine import GradientSearch, forward_bytes
from featscope.rendering import default_batch_size, memory_batch, optimizer_for, recipe
from featscope.rendering.plan import BYTES_PER_FORWARD_BYTE, MAX_ACCELERATOR_BATCH, MEMORY_SHARE
from featscope.store import Background

MiB = 1 << 20


class Three(nn.Module):
    """Outputs of 4x8x8, 4x8x8 and 2x4x4 floats for a 3x8x8 input: 544 floats to 'pool'."""

    input_shape = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.Sequential(nn.Conv2d(4, 2, 1), nn.MaxPool2d(2))
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        x = self.pool(self.relu(self.conv(x)))
        return self.head(x.flatten(1))


def test_fused_adam_on_cuda_gives_the_same_search_as_adam():
    # optimizer_for picks Adam(fused=True) for a CUDA search; this torch runs the fused kernel
    # on the CPU too, so the equivalence is checked here. Stated tolerance: 1e-5 relative.
    fused_factory = optimizer_for(recipe("featscope"), torch.device("cuda"), graphed=False)
    plain_factory = optimizer_for(recipe("featscope"), torch.device("cpu"), graphed=False)
    runs = []
    for factory in (fused_factory, plain_factory):
        torch.manual_seed(0)
        v = torch.randn(4, 3, 8, 5)
        target = torch.randn(4, 3, 8, 5)
        search = GradientSearch([v], maximize=True, optimizer=factory, batched=True)
        for _ in range(50):
            search.step(lambda v=v, target=target: -((v - target) ** 2).flatten(1).sum(1))
        runs.append((search.optimizer, v, search.history))
    (fused, v_fused, h_fused), (plain, v_plain, h_plain) = runs
    assert fused.defaults["fused"] and not plain.defaults.get("fused")
    assert torch.allclose(v_fused, v_plain, rtol=1e-5, atol=1e-6)
    assert h_fused == pytest.approx(h_plain, rel=1e-5)


def test_forward_bytes_counts_every_leaf_output_up_to_the_layer():
    model = Three()
    example = torch.rand(1, 3, 8, 8)
    assert forward_bytes(model, example, ["relu"]) == 4 * (4 * 64 + 4 * 64)
    # The pool's two leaves, then the forward pass stops: the head never runs.
    assert forward_bytes(model, example, ["pool"]) == 4 * (4 * 64 * 2 + 2 * 64 + 2 * 16)


def test_the_gpu_batch_is_what_its_free_memory_holds_for_the_layer():
    unit = 100 * MiB
    free = 10 * 1024 * MiB
    assert memory_batch(free, unit) == int(free * MEMORY_SHARE) // (unit * BYTES_PER_FORWARD_BYTE)
    assert memory_batch(free, unit) == 20
    assert memory_batch(0, unit) == 1 and memory_batch(-5, unit) == 1  # always one unit
    assert memory_batch(1 << 50, unit) == MAX_ACCELERATOR_BATCH
    # Through the plan's rule, with a fake memory reading for a CUDA device: the weights come
    # off the free memory (the model is on the CPU), crop views multiply a unit's bytes.
    loaded = fs.rendering.as_loaded(Three())
    unit = forward_bytes(loaded.module, torch.rand(1, 3, 8, 8), ["pool"])
    weights = sum(p.numel() * 4 for p in loaded.module.parameters())
    cuda = torch.device("cuda")
    free = 3 * MiB
    assert default_batch_size(loaded, cuda, 1, ["pool"], free=free) == \
        memory_batch(free - weights, unit)
    assert default_batch_size(loaded, cuda, 4, ["pool"], free=free) == \
        memory_batch(free - weights, 4 * unit) < memory_batch(free - weights, unit)
    deeper = default_batch_size(loaded, cuda, 1, ["head"], free=free)
    assert deeper == memory_batch(free - weights, forward_bytes(loaded.module,
                                                                torch.rand(1, 3, 8, 8), ["head"]))
    # The CPU rule is unchanged.
    assert default_batch_size(loaded, torch.device("cpu"), free=free) == 3 * 224 * 224 // 192


def test_batches_are_written_in_order_on_a_thread_while_the_next_renders():
    rendering_next = threading.Event()
    written, threads = [], []

    def write(batch):
        def work():
            assert rendering_next.wait(5)  # runs while the main thread goes on
            threads.append(threading.current_thread())
            written.append(batch)
        return work

    with Background() as writes:
        writes.submit(write(1))
        rendering_next.set()
        writes.submit(write(2))  # waits for batch 1 first
        assert written == [1]
    assert written == [1, 2] and threading.current_thread() not in threads


def test_a_failed_write_stops_the_run_and_ctrl_c_waits_for_the_batch_in_flight():
    def fail():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"), Background() as writes:
        writes.submit(fail)
        writes.submit(lambda: None)  # the next batch's writes see the failure
    done = []
    with pytest.raises(KeyboardInterrupt), Background() as writes:
        writes.submit(lambda: (time.sleep(0.2), done.append("batch 1")))
        raise KeyboardInterrupt  # Ctrl-C while batch 2 renders
    assert done == ["batch 1"]


@pytest.mark.parametrize("graphs", [False, True])  # True on a CPU: the deferred NaN check
def test_no_step_keeps_its_autograd_graph_into_the_next(graphs):
    """Each step's autograd graph is gone when the step ends (the step hooks run then). One
    kept into the next step keeps that step's activations (memory) and the image's gradient
    accumulator from the first pass, made on a stream that a CUDA graph's capture then waits
    on, which invalidates the capture."""
    live = []

    def on_step(step: int, values: torch.Tensor) -> None:
        gc.collect()
        live.append([tuple(t.shape) for t in gc.get_objects()
                     if isinstance(t, torch.Tensor) and t.grad_fn is not None])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's deprecated globals, scanned
        fs.render(Three().eval(), [fs.channel("pool", k) for k in range(2)], steps=6,
                  polish=0.0, device="cpu", seed=0, graphs=graphs, on_step=on_step)
    assert live == [[]] * 6
