"""Speed benchmark on a CUDA GPU: featscope against the model's own forward+backward, Lucent
0.1.8, and the whole job as a user runs it (``bench/speed.py --device cuda [--quick]``).

Rows, each measured side by side in one run (the CPU rows, ``speed.py`` without ``--device``,
are untouched; this writes ``speed-gpu.json`` and ``speed-gpu.md``):

- Per step, for units of an early, a middle and a late layer of ResNet-50 (torchvision, random
  weights: the timing does not depend on them) and of the embedded EfficientNet-Lite0, at the
  GPU's default batch size for the layer (``default_batch_size``: from its free memory), 224 px:
  the model's own forward to the layer and backward to the input (the limit), the limit as
  featscope runs the model (batch norms folded; in bfloat16 also channels-last), featscope as
  is (the sync-free step, fused Adam) and with ``graphs`` (each step one CUDA graph), in
  float32 and in bfloat16 (``CORE_STEPPERS``; ``LEVER_STEPPERS`` and ``FORMAT_STEPPERS`` add
  cuDNN's benchmark mode and bf16's two memory formats). Our step is the ``featscope``
  preset's step under transforms (its polish, a cheaper step without transforms, is left out
  here and counted in the whole job). The limit and ours alternate in rounds in one process;
  a block of steps is timed between two device synchronizations, after the warm-up and the
  graph's capture.
- The whole job: ``featscope sheet layer3.5 --units 0:64 --model torchvision.models:resnet50
  --steps 512`` as a fresh process, start-up, model loading, rendering and writing included:
  as is (precision auto), in float32 and with ``--graphs`` (the random weights are drawn anew
  by each process, so its activations are not compared here).
- bfloat16 against float32 on the embedded model (trained weights): the default recipe's
  final images read by the model in float32 (bf16 must reach what float32 reaches).
- Lucent on the same models and middle layers, one unit at a time as its users run it, and
  time to Lucent's quality on the embedded model (``speed.time_to_quality``; ours with graphs).

Budget: ``--quick`` measures the middle layers only, with fewer steps, rounds and Lucent
steps, the whole job once (as is), and a 16-channel sheet for time to quality; every process
has a time limit, and a section that would not fit the run's budget (``BUDGET_S``) is skipped
and reported as such, so the run ends in time (3 minutes for ``--quick``, 8 for the full run,
on one GPU).
Where no CUDA GPU is present it says so and measures nothing. ``--smoke`` runs every section
on the CPU with a few steps (its numbers mean nothing): a check that the code runs, before
a GPU's time is spent on it.
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import speed  # noqa: E402  (the CPU benchmark beside this file: Lucent, time to quality)

RESNET = "torchvision.models:resnet50"
EMBEDDED = "efficientnet_lite0"
LAYERS = {RESNET: {"early": "layer1.2", "middle": "layer3.5", "late": "layer4.2"},
          EMBEDDED: {"early": "_blocks.2", "middle": "_blocks.8", "late": "_blocks.14"}}
LUCENT_NAMES = {RESNET: "resnet50", EMBEDDED: None}  # torchvision name for lucent_runner
WHOLE_JOB = ["sheet", "layer3.5", "--units", "0:64", "--model", RESNET, "--steps", "512"]
# The whole job as is (precision auto: bfloat16 on GPUs that compute it natively), in
# float32, and with graphs.
VARIANTS = {"default": [], "float32": ["--precision", "float32"], "graphs": ["--graphs"]}
SETTINGS = {  # what a run measures, and the seconds it may take
    "quick": {"layers": ("middle",), "steps": 10, "rounds": 3, "lucent_steps": 128,
              "lucent_channels": 1, "precision_units": 16, "precision_steps": 256,
              "budget_s": 175, "device": "cuda", "job": {}, "jobs": ("default",)},
    "full": {"layers": ("early", "middle", "late"), "steps": 20, "rounds": 5,
             "lucent_steps": 512, "lucent_channels": 2, "precision_units": 64,
             "precision_steps": 256, "budget_s": 470, "device": "cuda", "job": {},
             "jobs": tuple(VARIANTS)},
    "smoke": {"layers": ("middle",), "steps": 2, "rounds": 1, "lucent_steps": 8,
              "lucent_channels": 1, "precision_units": 2, "precision_steps": 4,
              "budget_s": 900, "device": "cpu", "job": {"--units": "0:2", "--steps": "3"},
              "jobs": tuple(VARIANTS)},
}


# ----------------------------------------------------------------------------- child case
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _cudnn_benchmark(run, benchmark: bool):
    """``run`` with cuDNN's benchmark mode set to ``benchmark`` (on, it times the convolution
    algorithms for each new shape once and keeps the fastest), restored after."""
    def benchmarked(steps: int) -> float:
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = benchmark
        try:
            return run(steps)
        finally:
            torch.backends.cudnn.benchmark = before
    return benchmarked


def _raw_stepper(module: torch.nn.Module, normalization, layer: str, batch: int,
                 channels: int, precision: str, fold: bool, device: torch.device, context,
                 channels_last: bool | None = None):
    """The limit: forward to ``layer`` (stopping there) and backward to the input, under
    autocast for a reduced ``precision``; with ``fold`` as featscope runs the model
    (``channels_last``: its memory format; None: featscope's choice when folded)."""
    from featscope.engine import SearchModel, channels_last_helps
    norm = normalization.to(device)
    x = torch.rand(batch, 3, 224, 224, device=device, requires_grad=True)
    rows = torch.arange(batch, device=device)
    chans = rows % channels
    model = context.enter_context(SearchModel(
        module, device, [layer], precision=precision,
        fold_example=(lambda: norm(x[:1]).detach()) if fold else None,
        channels_last=(fold and channels_last_helps(device, precision)
                       if channels_last is None else channels_last),
        cudnn_benchmark=False))  # (the stepper's own setting, around each run)

    def run(steps: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            act = model.run(norm(x))[layer]
            act[rows, chans].mean().backward()
            x.grad = None
        _sync(device)
        return (time.perf_counter() - start) / steps
    return run


def _our_stepper(loaded, layer: str, batch: int, channels: int, precision: str, graphs: bool,
                 device: torch.device, notes: list[str], channels_last: bool | None = None,
                 benchmark: bool = False):
    """featscope's step (the ``featscope`` preset without its polish) on ``batch`` units;
    ``channels_last`` and cuDNN's ``benchmark`` mode in place of featscope's choices
    (``engine.model``'s ``channels_last_helps`` and ``cudnn_benchmark_helps``; None: its
    own)."""
    from unittest import mock

    import featscope as fs
    from featscope.engine import model as search_model
    from featscope.rendering.batch import GRAPH_WARMUP
    objectives = [fs.channel(layer, k % channels) for k in range(batch)]
    skip = GRAPH_WARMUP + 2  # warm-up, the capture, one replay
    choices = {"cudnn_benchmark_helps": lambda _device: benchmark}
    if channels_last is not None:
        choices["channels_last_helps"] = lambda _device, _precision: channels_last

    def run(steps: int) -> float:
        marks = {}

        def on_step(step: int, values: torch.Tensor) -> None:
            if step in (skip - 1, skip + steps - 1):
                _sync(device)
                marks[step] = time.perf_counter()

        with warnings.catch_warnings(record=True) as caught, \
                mock.patch.multiple(search_model, **choices):
            warnings.simplefilter("always")
            result = fs.render(loaded, objectives, preset="featscope", steps=skip + steps,
                               polish=0.0, device=device, batch_size=batch, precision=precision,
                               graphs=graphs, seed=0, on_step=on_step)
        notes.extend(str(w.message) for w in caught if "CUDA graph" in str(w.message))
        if len(result.units[0].batch) != batch:  # recovery split it: not the asked batch
            notes.append(f"out of memory at batch {batch}: rendered in smaller batches")
        return (marks[skip + steps - 1] - marks[skip - 1]) / steps
    return run


# The steppers of a per-step row. Limits: name -> (precision, batch norms folded, channels
# last (None: featscope's choice), cuDNN's benchmark mode); ours: name -> (precision, graphs,
# cuDNN's benchmark mode, channels last (None: featscope's choice), the limit it is compared
# with).
RAW_STEPPERS = {"raw": ("float32", False, None, False),
                "raw_optimized": ("float32", True, None, False),
                "raw_optimized_channels_last": ("float32", True, True, False),
                "raw_bf16": ("bfloat16", False, None, False),
                "raw_optimized_bf16": ("bfloat16", True, None, False),
                "raw_optimized_bf16_channels_last": ("bfloat16", True, True, False),
                "raw_optimized_bf16_contiguous": ("bfloat16", True, False, False),
                "raw_cudnn_benchmark": ("float32", False, None, True),
                "raw_bf16_cudnn_benchmark": ("bfloat16", False, None, True),
                "raw_optimized_bf16_cudnn_benchmark": ("bfloat16", True, None, True)}
OUR_STEPPERS = {"ours": ("float32", False, False, None, "raw"),
                "ours_bf16": ("bfloat16", False, False, None, "raw_bf16"),
                "ours_bf16_channels_last": ("bfloat16", False, False, True, "raw_bf16"),
                "ours_bf16_contiguous": ("bfloat16", False, False, False, "raw_bf16"),
                "ours_graphs_bf16_channels_last": ("bfloat16", True, False, True, "raw_bf16"),
                "ours_graphs": ("float32", True, False, None, "raw"),
                "ours_graphs_bf16": ("bfloat16", True, False, None, "raw_bf16"),
                "ours_graphs_bf16_contiguous": ("bfloat16", True, False, False, "raw_bf16"),
                "ours_cudnn_benchmark": ("float32", False, True, None, "raw_cudnn_benchmark"),
                "ours_graphs_cudnn_benchmark": ("float32", True, True, None,
                                                "raw_cudnn_benchmark"),
                "ours_graphs_bf16_cudnn_benchmark": ("bfloat16", True, True, None,
                                                     "raw_bf16_cudnn_benchmark"),
                "ours_graphs_bf16_contiguous_cudnn_benchmark": (
                    "bfloat16", True, True, False, "raw_bf16_cudnn_benchmark")}
# Enough for the per-step target: each of ours beside its limit, in both precisions, as a
# user runs it (no graphs) and with graphs. (On an H100, 2026-11-27: channels-last made the
# float32 limit 4-39 % slower at every depth of both models, bf16's 14-27 % faster once the
# batch norms folded; cuDNN's benchmark mode changed no step: LEVER_STEPPERS, FORMAT_STEPPERS.)
CORE_STEPPERS = ("raw", "raw_optimized", "raw_bf16", "raw_optimized_bf16", "ours",
                 "ours_graphs", "ours_bf16", "ours_graphs_bf16")
# bfloat16's memory format with the batch norms folded (and folded float32), each beside the
# unfolded limit in its precision.
FORMAT_STEPPERS = ("raw", "raw_optimized", "raw_bf16", "raw_optimized_bf16_channels_last",
                   "raw_optimized_bf16_contiguous", "ours", "ours_graphs",
                   "ours_bf16_channels_last", "ours_bf16_contiguous",
                   "ours_graphs_bf16_channels_last", "ours_graphs_bf16_contiguous")
# The levers of cuDNN's benchmark mode and of bf16's memory format, each beside its limit.
LEVER_STEPPERS = ("raw", "raw_bf16", "raw_optimized_bf16", "raw_cudnn_benchmark",
                  "raw_bf16_cudnn_benchmark", "raw_optimized_bf16_cudnn_benchmark", "ours",
                  "ours_graphs", "ours_graphs_bf16", "ours_graphs_bf16_contiguous",
                  "ours_graphs_cudnn_benchmark", "ours_graphs_bf16_cudnn_benchmark",
                  "ours_graphs_bf16_contiguous_cudnn_benchmark")


def case_steps(model: str, layers: list[str], steps: int, rounds: int, device: str,
               steppers: list[str] | None = None) -> dict:
    """ms/step of the limits and of ours for each layer, in interleaved rounds (see the module
    docstring); the overheads are medians of the rounds' ratios. ``steppers``: names from
    RAW_STEPPERS and OUR_STEPPERS (all if None)."""
    from contextlib import ExitStack

    import featscope as fs
    from featscope.views.selection import layer_features
    target = torch.device(device)
    loaded = fs.load_model(model)
    wanted = set(steppers or [*RAW_STEPPERS, *OUR_STEPPERS])
    rows = []
    for layer in layers:
        channels = layer_features(loaded, layer)
        batch = fs.default_batch_size(loaded, target, 1, [layer])
        notes: list[str] = []
        with ExitStack() as context:
            raw = {name: _cudnn_benchmark(_raw_stepper(
                       copy.deepcopy(loaded.module), loaded.normalization, layer, batch,
                       channels, precision, fold, target, context, last), benchmark)
                   for name, (precision, fold, last, benchmark) in RAW_STEPPERS.items()
                   if name in wanted}
            ours = {name: _our_stepper(loaded, layer, batch, channels, precision, graphs,
                                       target, notes, last, benchmark)
                    for name, (precision, graphs, benchmark, last, _) in OUR_STEPPERS.items()
                    if name in wanted}
            runs = {**raw, **ours}
            if target.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            for run in runs.values():
                run(2)  # warm-up (cuDNN's choices, the allocator)
            peak = torch.cuda.max_memory_allocated() / 2**30 if target.type == "cuda" else 0.0
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):
                for name, run in runs.items():
                    seconds[name].append(run(steps))
        row = {"model": model, "layer": layer, "batch": batch, "channels": channels,
               "peak_gib": peak, "notes": sorted(set(notes))}
        for name, values in seconds.items():
            row[f"{name}_ms"] = 1000 * statistics.median(values)
            row[f"{name}_rounds_ms"] = [1000 * v for v in values]
        for name, (*_, limit) in OUR_STEPPERS.items():
            if name not in seconds or limit not in seconds:
                continue
            row[f"{name}_overhead"] = statistics.median(
                [a / b for a, b in zip(seconds[name], seconds[limit])])
        rows.append(row)
    return {"rows": rows}


def case_precision(layer: str, channels: list[int], steps: int, device: str) -> dict:
    """The default recipe in float32 and in bfloat16 (with graphs) on the embedded model: each
    unit's activation on its final image, both read by the model in float32."""
    import featscope as fs
    from featscope.engine import Probe, frozen
    loaded = fs.load_model()
    objectives = [fs.channel(layer, k) for k in channels]
    finals, seconds = {}, {}
    for precision in ("float32", "bfloat16"):
        start = time.perf_counter()
        result = fs.render(loaded, objectives, steps=steps, device=device, seed=0, graphs=True,
                           precision=precision)
        seconds[precision] = time.perf_counter() - start
        with frozen(loaded.module), Probe(loaded.module, [layer]) as probe, torch.no_grad():
            acts = probe.run(loaded.normalization(result.images))[layer]
        finals[precision] = [float(acts[i, k].mean()) for i, k in enumerate(channels)]
    ratios = [b / a for a, b in zip(finals["float32"], finals["bfloat16"]) if a > 0]
    return {"layer": layer, "steps": steps, "units": len(channels), "finals": finals,
            "seconds": seconds, "mean_ratio": statistics.fmean(ratios) if ratios else None,
            "min_ratio": min(ratios) if ratios else None}


def case_kernels(model: str, layer: str, steps: int, device: str,
                 limits: list[str] | None = None, top: int = 12) -> dict:
    """Where a step of the limit spends its GPU time: torch.profiler over ``steps`` steps of
    each limit in ``limits`` (names from RAW_STEPPERS; default: float32, bfloat16 in both
    memory formats) at the layer's default batch; per limit the device ms per step, the
    share of convolution kernels and the ``top`` kernels by device time."""
    from contextlib import ExitStack

    from torch.profiler import ProfilerActivity, profile

    import featscope as fs
    from featscope.views.selection import layer_features
    target = torch.device(device)
    loaded = fs.load_model(model)
    channels = layer_features(loaded, layer)
    batch = fs.default_batch_size(loaded, target, 1, [layer])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if target.type == "cuda" else [])
    rows = {}
    for name in limits or ["raw", "raw_bf16", "raw_optimized_bf16"]:
        precision, fold, last, benchmark = RAW_STEPPERS[name]
        with ExitStack() as context:
            run = _cudnn_benchmark(_raw_stepper(copy.deepcopy(loaded.module),
                                                loaded.normalization, layer, batch, channels,
                                                precision, fold, target, context, last),
                                   benchmark)
            run(3)  # warm-up
            with profile(activities=activities) as prof:
                run(steps)
        events = list(prof.key_averages())
        keys = (("self_device_time_total", "self_cuda_time_total") if target.type == "cuda"
                else ("self_cpu_time_total",))  # (on the CPU: a smoke test of this case)

        def device_ms(event) -> float:
            key = next((k for k in keys if hasattr(event, k)), None)
            return getattr(event, key) / 1000 / steps if key else 0.0
        events = [e for e in events if device_ms(e) > 0]
        total = sum(device_ms(e) for e in events)
        conv = sum(device_ms(e) for e in events
                   if any(k in e.key.lower() for k in ("conv", "gemm", "xmma", "cudnn", "sm90")))
        rows[name] = {"device_ms_per_step": total, "convolution_share": conv / total if total
                      else None, "top": [{"kernel": e.key[:120], "ms": device_ms(e),
                                          "calls": e.count // steps}
                                         for e in sorted(events, key=device_ms,
                                                         reverse=True)[:top]]}
    return {"model": model, "layer": layer, "batch": batch, "steps": steps, "limits": rows}


CASES = {"steps": case_steps, "precision": case_precision, "kernels": case_kernels}


# ----------------------------------------------------------------------------- orchestration
class Budget:
    """The run's seconds: what is left, and a time limit for the next process."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def limit(self, cap: float) -> float:
        return max(1.0, min(cap, self.left()))


def run_child(kind: str, timeout: float, **kwargs) -> dict:
    """A case of this benchmark in a fresh process (``speed.run_child``)."""
    return speed.run_child(kind, timeout, script=__file__, **kwargs)


def whole_job(variant: list[str], timeout: float, device: str = "cuda",
              changes: dict[str, str] | None = None) -> dict:
    """The sheet as a fresh process: wall seconds from start to exit, and what it wrote
    (``changes``: other values for some of its options, for a smoke run)."""
    args = list(WHOLE_JOB)
    for option, value in (changes or {}).items():
        args[args.index(option) + 1] = value
    with tempfile.TemporaryDirectory(prefix="featscope-sheet-") as out:
        command = [sys.executable, "-m", "featscope", *args, *variant, "--device", device,
                   "--quiet", "--fresh", "--out", out]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                              timeout=timeout)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        summary = json.loads((Path(out) / "summary.json").read_text())
    finals = [r["objective"] for r in summary["results"] if r.get("objective") is not None]
    return {"command": "featscope " + " ".join(args + variant), "wall_s": wall,
            "render_s": summary.get("render_seconds"), "units": len(finals),
            "mean_activation": statistics.fmean(finals) if finals else None,
            "batch_size": max(len(r.get("batch", [])) for r in summary["results"])}


def machine() -> dict:
    if not torch.cuda.is_available():  # a smoke run
        return {"gpu": "no GPU: a CPU smoke run, its numbers mean nothing", "memory_gib": 0,
                "torch": torch.__version__, "cuda": None, "cudnn_tf32": False,
                "matmul_tf32": False}
    properties = torch.cuda.get_device_properties(0)
    return {"gpu": torch.cuda.get_device_name(0), "memory_gib": properties.total_memory / 2**30,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_tf32": torch.backends.cuda.matmul.allow_tf32}


# The sections of a run, in the order they run (``--only`` picks some).
SECTIONS = ("steps", "whole job", "bf16", "lucent", "time to quality")


def section(report: dict, name: str, budget: Budget, needs: float, work) -> None:
    """Run one section if it was asked for (``report["only"]``) and the budget has ``needs``
    seconds left; record why not otherwise."""
    if not any(name.startswith(wanted) for wanted in report["only"]):
        return
    if budget.left() < needs:
        report["skipped"][name] = f"not started: {budget.left():.0f} s of the budget left"
        return
    began = time.monotonic()
    try:
        work()
    except subprocess.TimeoutExpired as error:
        report["skipped"][name] = f"stopped at its time limit ({error.timeout:.0f} s)"
    except Exception as error:  # noqa: BLE001 (a failed section is reported; the others run)
        report["skipped"][name] = f"{type(error).__name__}: {str(error)[-1500:]}"
    report["section_seconds"][name] = time.monotonic() - began
    print(f"[speed_gpu] {name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)


def benchmark(mode: str, results: Path, only: list[str] | None = None) -> dict:
    """The sections of ``mode``'s run (``only``: those of SECTIONS; time to quality needs
    Lucent's run on the embedded model)."""
    settings = SETTINGS[mode]
    quick = mode != "full"
    device = settings["device"]
    budget = Budget(settings["budget_s"])
    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": quick,
              "mode": mode,
              "settings": settings, "steps": [], "whole_job": {}, "precision": {}, "lucent": {},
              "vs_lucent": {}, "skipped": {}, "section_seconds": {},
              "only": list(only or SECTIONS)}
    channels = list(range(settings["lucent_channels"]))

    def steps(model: str) -> None:
        layers = [LAYERS[model][k] for k in settings["layers"]]
        report["steps"] += run_child("steps", budget.limit(150), model=model, layers=layers,
                                     steps=settings["steps"], rounds=settings["rounds"],
                                     device=device, steppers=list(CORE_STEPPERS))["rows"]

    def job(name: str) -> None:
        report["whole_job"][name] = whole_job(VARIANTS[name], budget.limit(90), device,
                                              settings["job"])

    def lucent(model: str) -> None:
        report["lucent"][model] = speed.run_lucent(
            LAYERS[model]["middle"], channels, settings["lucent_steps"], results,
            torchvision=LUCENT_NAMES[model], install=False, timeout=budget.limit(90))

    def precision() -> None:
        report["precision"] = run_child("precision", budget.limit(60),
                                        layer=LAYERS[EMBEDDED]["middle"],
                                        channels=list(range(settings["precision_units"])),
                                        steps=settings["precision_steps"], device=device)

    def quality() -> None:
        report["vs_lucent"] = speed.time_to_quality(
            report["lucent"][EMBEDDED], channels, settings["lucent_steps"], device, quick,
            options={"graphs": True}, timeout=budget.limit(120))

    for model in (RESNET, EMBEDDED):
        section(report, f"steps {model}", budget, 30, lambda model=model: steps(model))
    for name in settings["jobs"]:
        section(report, f"whole job {name}", budget, 20, lambda name=name: job(name))
    section(report, "bf16 against float32", budget, 15, precision)
    for model in (RESNET, EMBEDDED):
        section(report, f"lucent {model}", budget, 20, lambda model=model: lucent(model))
    if EMBEDDED in report["lucent"]:
        section(report, "time to quality", budget, 30, quality)
    return report


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f"({ratio:.2f}x)"


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Measured {report['date']} on one {m['gpu']} ({m['memory_gib']:.0f} GiB), torch "
             f"{m['torch']}, CUDA {m['cuda']}" + {"quick": " (quick run)", "full": "",
                                                  "smoke": " (smoke run)"}[report["mode"]]
             + f"; TF32 convolutions {'on' if m['cudnn_tf32'] else 'off'} (PyTorch's default). "
             "ms/step: median over interleaved rounds of a block of steps; overhead: median of "
             "the rounds' ratios to the limit in the same precision.", ""]
    if report["steps"]:
        lines += ["| model | layer | batch | limit | limit, folded | featscope | --graphs | "
                  "limit bf16 | limit bf16, folded | featscope bf16 | --graphs bf16 | peak GiB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in report["steps"]:
            lines.append(
                f"| {r['model'].split(':')[-1]} | {r['layer']} | {r['batch']} | "
                f"{_ms(r.get('raw_ms'))} | {_ms(r.get('raw_optimized_ms'))} | "
                f"{_ms(r.get('ours_ms'))} {_times(r.get('ours_overhead'))} | "
                f"{_ms(r.get('ours_graphs_ms'))} {_times(r.get('ours_graphs_overhead'))} | "
                f"{_ms(r.get('raw_bf16_ms'))} | {_ms(r.get('raw_optimized_bf16_ms'))} | "
                f"{_ms(r.get('ours_bf16_ms'))} {_times(r.get('ours_bf16_overhead'))} | "
                f"{_ms(r.get('ours_graphs_bf16_ms'))} "
                f"{_times(r.get('ours_graphs_bf16_overhead'))} | {r['peak_gib']:.1f} |")
        lines += ["", "Overheads: featscope over the model's own pass (unfolded) in the same "
                      "precision; \"folded\" is the model as featscope runs it (batch norms "
                      "folded; bf16 channels-last)."]
    if report["whole_job"]:
        lines += ["", "| the whole job, a fresh process (start-up and model loading "
                      "included) | wall s | rendering s | units per batch |", "|---|---|---|---|"]
        for job in report["whole_job"].values():
            lines.append(f"| `{job['command']}` | {job['wall_s']:.1f} | "
                         f"{job['render_s'] or 0:.1f} | {job['batch_size']} |")
    p = report["precision"]
    if p:
        lines += ["", f"bfloat16 against float32 ({p['units']} units of the embedded model's "
                      f"{p['layer']}, {p['steps']} steps, --graphs; each final image read by the "
                      f"model in float32): activation ratio bf16/fp32 mean {p['mean_ratio']:.3f}, "
                      f"lowest {p['min_ratio']:.3f}; {p['seconds']['float32']:.1f} s against "
                      f"{p['seconds']['bfloat16']:.1f} s."]
    if report["lucent"]:
        lines += ["", "| Lucent 0.1.8, one unit at a time | layer | Lucent ms/step | its limit "
                      "(batch 1) | featscope ms per unit-step (--graphs, default batch) | "
                      "per unit-step, faster |", "|---|---|---|---|---|---|"]
        ours = {(r["model"], r["layer"]): r for r in report["steps"]}
        for model, result in report["lucent"].items():
            layer = LAYERS[model]["middle"]
            lucent_ms = statistics.fmean(r["ms_per_step"] for r in result["runs"])
            raw_ms = statistics.median(r["raw_ms_before"] for r in result["runs"])
            row = ours.get((model, layer))
            per_unit = row["ours_graphs_ms"] / row["batch"] if row else None
            lines.append(f"| {model.split(':')[-1]} | {layer} | {lucent_ms:.1f} | {raw_ms:.1f} "
                         f"| {_ms(per_unit)} | "
                         + (f"{lucent_ms / per_unit:.0f}x |" if per_unit else "– |"))
    v = report["vs_lucent"]
    if v:
        sheet = v["sheet"]
        lines += ["", f"Time to Lucent's quality (its activation after {v['lucent_steps']} "
                      f"steps) on the embedded model: a sheet of {v['sheet_size']} channels, "
                      f"Lucent {v['lucent_seconds_per_channel'] * v['sheet_size']:.0f} s (once "
                      f"per channel), featscope --graphs {sheet['seconds']:.1f} s "
                      f"({sheet['steps']} steps, batch {sheet['batch_size']}; Lucent's "
                      f"activation reached: {'yes' if sheet['reached'] else 'no'}): "
                      f"{v['sheet_speedup']:.0f}x."]
    for name, why in report["skipped"].items():
        lines.append(f"\nNot measured: {name}: {why.splitlines()[0] if why else ''}")
    return "\n".join(lines) + "\n"


def main(mode: str, results: Path, only: list[str] | None = None) -> int:
    """``mode``: quick, full or smoke (see the module docstring); ``only``: some of SECTIONS."""
    if SETTINGS[mode]["device"] == "cuda" and not torch.cuda.is_available():
        print("speed_gpu: no CUDA GPU on this machine, so no GPU row was measured (the CPU "
              "rows are bench/speed.py without --device cuda; bench/results/speed.json is "
              "left as it is)", file=sys.stderr)
        return 2
    results.mkdir(parents=True, exist_ok=True)
    report = benchmark(mode, results, only)
    (results / "speed-gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (results / "speed-gpu.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        spec = json.loads(sys.argv[2])
        print(json.dumps(CASES[spec.pop("kind")](**spec)))
    else:
        sys.exit(main("smoke" if "--smoke" in sys.argv else "quick" if "--quick" in sys.argv
                      else "full", HERE / "results"))
