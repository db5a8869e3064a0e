"""Where an atlas's workers run, how many there are, and what each one gets.

``--cluster`` names the place:

- ``local`` (the default): a Ray instance started on this machine for the run (and shut
  down after it);
- ``auto``: the Ray cluster this machine belongs to (``ray start``; RAY_ADDRESS);
- ``ray://HOST:PORT`` (Ray Client) or ``HOST:PORT`` (the head's GCS address): that cluster;
- ``none``: this process, without Ray (also what ``local`` becomes when Ray is not
  installed).

In a Python process where Ray is already initialized (a notebook, the tests), every value
but ``none`` uses that instance as it is, and leaves it running.

Workers: one per GPU when the run uses GPUs, otherwise one per group of ``CPU_GROUP`` cores
(one core), each with that group's cores as its torch threads; ``--workers`` sets the
number (and the cores are shared among them). The fault settings are decided here, once:

- an actor that dies is restarted by Ray up to ``ACTOR_RESTARTS`` times (it loads the model
  again);
- Ray never retries an atlas task itself (``TASK_RETRIES = 0``): the driver re-queues the
  batch of a dead worker, so that it can go to another worker at once, be counted, and be
  given up after ``BATCH_ATTEMPTS`` lost workers (a batch that kills every worker it meets,
  e.g. out of memory, must not loop forever).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass

import torch

from ..errors import FeatscopeError

INSTALL_HINT = "pip install 'featscope[atlas]'"

# Cores per CPU worker (its torch threads). Units are independent, so one single-threaded
# worker per core gives the most units per minute, and it stays fast on a busy machine,
# where a process with a thread per core stalls whenever another program takes a core
# (bench/atlas.py: 1 worker x 2 threads against 2 workers x 1 thread). Each worker holds its
# own copy of the model; with little memory per core, give fewer --workers.
CPU_GROUP = 1
CPU_WORKERS = "one per CPU core" if CPU_GROUP == 1 else f"one per {CPU_GROUP} CPU cores"
ACTOR_RESTARTS = 3
TASK_RETRIES = 0
BATCH_ATTEMPTS = 3
# The local instance's shared-memory object store: tasks and results are small (a batch's
# units, a unit's record), so a small store leaves the memory to the renders.
OBJECT_STORE_BYTES = 256 * 1024 * 1024

CLUSTERS = ("local", "auto", "none")
CLUSTER_HELP = (f"local (a Ray instance on this machine: one worker per GPU, or {CPU_WORKERS}), "
                "auto (the Ray cluster this machine belongs to), ray://HOST:PORT or HOST:PORT "
                "(a Ray cluster's address), none (this process, without Ray)")
_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+$")


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def check_cluster(cluster: str, workers: int | None) -> None:
    """Reject a bad --cluster or --workers before anything starts."""
    if cluster not in CLUSTERS and not _ADDRESS.match(cluster):
        raise FeatscopeError(f"bad --cluster {cluster!r}; valid: {CLUSTER_HELP}")
    if workers is not None and workers < 1:
        raise FeatscopeError(f"--workers must be at least 1 (got {workers})")
    if cluster not in ("local", "none") and not ray_installed():
        raise FeatscopeError(f"--cluster {cluster} needs Ray, which is not installed: "
                             f"{INSTALL_HINT}")


@dataclass(frozen=True)
class Layout:
    """How many workers, and what each one asks Ray for."""

    workers: int
    cpus: int  # CPU cores per worker (its torch threads)
    gpus: int  # GPUs per worker (0 or 1)

    def describe(self) -> str:
        each = f"1 GPU and {self.cpus} CPU thread(s)" if self.gpus else f"{self.cpus} CPU thread(s)"
        return f"{self.workers} worker(s), each with {each}"


def wants_gpus(device: str) -> bool:
    """Whether --device lets workers use GPUs (auto: when there are any)."""
    return device == "auto" or device.startswith("cuda")


def plan_layout(cpus: float, gpus: float, device: str, workers: int | None,
                node_cpus: float | None = None) -> Layout:
    """The workers for ``cpus`` cores and ``gpus`` GPUs in all (``node_cpus``: the most cores
    one machine of the cluster has; a worker must fit on one)."""
    cpus, gpus = int(cpus), int(gpus)
    if gpus and wants_gpus(device):
        count = workers or gpus
        return Layout(count, max(1, min(CPU_GROUP, cpus // max(1, count))), 1)
    if device.startswith("cuda"):
        raise FeatscopeError(f"--device {device} was asked for, but the cluster has no GPU")
    count = workers or max(1, cpus // CPU_GROUP)
    per_node = int(node_cpus) if node_cpus else cpus
    return Layout(count, max(1, min(per_node, cpus // count)), 0)


def local_resources(device: str) -> tuple[int, int]:
    """(cores, GPUs) of this machine that a local instance offers its workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = torch.cuda.device_count() if wants_gpus(device) else 0
    return cores or 1, gpus
