"""A whole-model atlas on many workers: every unit of every layer, rendered by Ray actors
(or in this process), resumable, with the images a single process gives.

- ``tasks``: what every worker gets once (``Request``), the tasks (a batch of the batching
  plan; a shard of the image folder for dataset examples), what a task returns;
- ``worker``: ``AtlasWorker``, which loads the model once, plans the request on its own
  device, renders batches with ``rendering.render_planned`` and stores each unit atomically;
- ``cluster``: where workers run (a local Ray instance, a cluster, this process), how many,
  and the fault settings (actor restarts, task retries, attempts per batch);
- ``pools``: the workers behind one interface, in this process or as Ray actors;
- ``driver``: idle workers pull the next task; a dead worker's batch is re-queued;
- ``progress``: units done, units per minute, time left, each worker's state; progress.json;
- ``run``: ``Atlas``, one run's workers and its two phases (dataset examples, rendering).

Ray is optional (``pip install 'featscope[atlas]'``): it is imported only when a run uses it.
"""

from .cluster import (
    ACTOR_RESTARTS,
    BATCH_ATTEMPTS,
    CLUSTER_HELP,
    CPU_GROUP,
    INSTALL_HINT,
    TASK_RETRIES,
    Layout,
    check_cluster,
    plan_layout,
    ray_installed,
)
from .progress import PROGRESS, Progress, WorkerState, duration
from .run import Atlas, adopt
from .tasks import EXAMPLES_SHARD, ExamplesTask, Load, RenderTask, Request, TaskResult
from .worker import AtlasWorker

__all__ = ["ACTOR_RESTARTS", "BATCH_ATTEMPTS", "CLUSTER_HELP", "CPU_GROUP", "INSTALL_HINT",
           "TASK_RETRIES", "Layout", "check_cluster", "plan_layout", "ray_installed",
           "PROGRESS", "Progress", "WorkerState", "duration", "Atlas", "adopt",
           "EXAMPLES_SHARD", "ExamplesTask", "Load", "RenderTask", "Request", "TaskResult",
           "AtlasWorker"]
