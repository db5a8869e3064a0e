"""Atlas throughput: units per minute in one process and on local Ray workers, the scaling
efficiency and Ray's overhead per task; and the per-unit cost of a ResNet-50 atlas.

    .venv/bin/python bench/atlas.py              # about 5 minutes on 2 CPU cores
    .venv/bin/python bench/atlas.py --quick      # one round, fewer steps
    .venv/bin/python bench/atlas.py --resnet50   # + ResNet-50's per-unit cost and the estimate

Every configuration runs `featscope atlas` on the same request (one layer of the embedded
model, every unit) in its own subprocess, into a fresh folder, and reads its progress.json:

- units per minute over the rendering phase (from the first task handed out to the last unit
  back: Ray's start and the workers' model loading are not in it; the command's whole wall
  time is reported beside it);
- Ray's overhead per task: the median of (task handed out -> result back) minus the worker's
  own time for it (serialization, scheduling, the result's way back).

Configurations: one process (`--cluster none`) on every core and on one core; a local Ray
instance with 1 worker on 1 core, 1 worker on every core, and one worker per core. "On one
core" runs the whole command under `taskset -c 0`, so that the local Ray instance has one
core to give. Scaling efficiency = rate(N workers on N cores) / (N x rate(1 worker on 1
core)). On a machine with GPUs, one row per number of GPU workers (`--device cuda`).
Configurations alternate in rounds (`--rounds`), so that a shared machine's drift hits them
alike; the median of the rounds is reported.

`--resnet50` times one unit of one block per stage of torchvision's ResNet-50 (random
weights: the cost does not depend on them) at 224 px on this CPU, and turns a stated GPU
reference (an H100 rendered a 64-channel, 512-step sheet of layer3.5 in 37 s end to end)
into an estimate of a full ResNet-50 atlas (every unit of its 16 blocks) on N GPUs, each
stage scaled by its cost relative to layer3.5 measured here. It is an estimate, not a GPU
measurement. Writes bench/results/atlas.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAYER = "_blocks.2"  # 24 units

# ResNet-50's blocks by stage: (stage, blocks, channels per unit-bearing block output).
RESNET50_STAGES = [("layer1", 3, 256), ("layer2", 4, 512), ("layer3", 6, 1024),
                   ("layer4", 3, 2048)]
MEASURED_BLOCK = {"layer1": "layer1.1", "layer2": "layer2.1", "layer3": "layer3.5",
                  "layer4": "layer4.1"}
# The GPU reference the estimate scales (measured elsewhere, stated in the issue):
H100_SHEET = {"layer": "layer3.5", "units": 64, "steps": 512, "seconds": 37.0}
GPU_COUNTS = (1, 8, 32)
PRICE_PER_GPU_HOUR = 3.0  # USD: a placeholder; put your provider's price here
STARTUP_SECONDS = 120  # Ray's start and every worker loading the model, once per run


def run_atlas(out: Path, args: list[str], one_core: bool) -> dict:
    """One `featscope atlas` run: its progress.json and its wall time."""
    command = [sys.executable, "-m", "featscope", "atlas", *args, "--quiet", "--out", str(out)]
    if one_core:
        command = ["taskset", "-c", "0", *command]
    load = os.getloadavg()[0]
    began = time.perf_counter()
    # Ray starts its workers at niceness 15 (they yield to every other process); here they
    # run at the niceness of the single-process rows, so that a shared machine's other work
    # slows both alike.
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO), "RAY_worker_niceness": "0"})
    wall = time.perf_counter() - began
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    progress = json.loads((out / "progress.json").read_text())
    return {"units_per_minute": progress["units_per_minute"], "wall_seconds": round(wall, 1),
            "task_overhead_ms": progress["task_overhead_ms"], "units": progress["rendered"],
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "workers": [(w["device"], w["threads"], w["units"]) for w in progress["workers"]]}


def configurations(cores: int, gpus: int) -> list[dict]:
    rows = [{"name": f"one process, {cores} cores", "args": ["--cluster", "none"],
             "one_core": False}]
    if shutil.which("taskset") and cores > 1:
        rows += [{"name": "one process, 1 core", "args": ["--cluster", "none"],
                  "one_core": True},
                 {"name": "Ray, 1 worker on 1 core", "args": ["--workers", "1"],
                  "one_core": True}]
    rows += [{"name": f"Ray, 1 worker on {cores} cores", "args": ["--workers", "1"],
              "one_core": False},
             {"name": f"Ray, {cores} workers on {cores} cores (1 each)",
              "args": ["--workers", str(cores)], "one_core": False}]
    rows += [{"name": f"Ray, {n} GPU worker(s)", "args": ["--workers", str(n), "--device",
                                                         "cuda"], "one_core": False, "gpus": n}
             for n in range(1, gpus + 1)]
    return rows


def scaling(report: dict, cores: int) -> dict:
    rate = {row["name"]: row["units_per_minute"] for row in report["rows"]}
    one = rate.get("Ray, 1 worker on 1 core")
    many = rate.get(f"Ray, {cores} workers on {cores} cores (1 each)")
    single = rate.get(f"one process, {cores} cores")
    return {"efficiency": None if not (one and many) else round(many / (cores * one), 3),
            "speedup_over_one_process": None if not (single and many)
            else round(many / single, 3)}


def throughput(rounds: int, steps: int, size: int) -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = torch.cuda.device_count()
    request = ["--layers", LAYER, "--steps", str(steps), "--size", str(size), "--seed", "0"]
    rows = configurations(cores, gpus)
    measured: dict[str, list[dict]] = {row["name"]: [] for row in rows}
    with tempfile.TemporaryDirectory(prefix="featscope-bench-atlas-") as scratch:
        for turn in range(rounds):
            for i, row in enumerate(rows):
                device = [] if row.get("gpus") else ["--device", "cpu"]
                out = Path(scratch) / f"r{turn}-{i}"
                result = run_atlas(out, request + device + row["args"], row["one_core"])
                measured[row["name"]].append(result)
                print(f"round {turn + 1}: {row['name']}: {result['units_per_minute']} units/min, "
                      f"overhead {result['task_overhead_ms']} ms/task, wall "
                      f"{result['wall_seconds']} s, load {result['load_before']}", flush=True)
    report_rows = []
    for row in rows:
        runs = measured[row["name"]]
        overheads = [r["task_overhead_ms"] for r in runs if r["task_overhead_ms"] is not None]
        report_rows.append({
            "name": row["name"],
            "units_per_minute": round(statistics.median(r["units_per_minute"] for r in runs), 1),
            "wall_seconds": round(statistics.median(r["wall_seconds"] for r in runs), 1),
            "task_overhead_ms": round(statistics.median(overheads), 2) if overheads else None,
            "rounds": runs})
    report = {"request": {"model": "efficientnet_lite0", "layer": LAYER, "steps": steps,
                          "size": size, "units": runs[0]["units"]},
              "cores": cores, "gpus": gpus, "rows": report_rows}
    report["scaling"] = scaling(report, cores)
    loads = [r[key] for row in report_rows for r in row["rounds"]
             for key in ("load_before", "load_after")]
    report["load"] = [min(loads), max(loads)]
    return report


def resnet50_costs(steps: tuple[int, int] = (4, 12)) -> dict:
    """Seconds per step and per-batch set-up of one unit per ResNet-50 stage on one core of
    this CPU (one thread: what an atlas's CPU worker has)."""
    import featscope as fs

    torch.set_num_threads(1)
    model = fs.load_model("torchvision:resnet50", random_weights=True)
    costs = {}
    for stage, block in MEASURED_BLOCK.items():
        fs.render(model, [fs.channel(block, 0)], steps=2, device="cpu")  # warm-up
        times = {}
        for n in steps:
            began = time.perf_counter()
            fs.render(model, [fs.channel(block, 0)], steps=n, device="cpu", seed=1)
            times[n] = time.perf_counter() - began
        per_step = (times[steps[1]] - times[steps[0]]) / (steps[1] - steps[0])
        costs[stage] = {"block": block, "ms_per_step": round(per_step * 1000, 1),
                        "setup_seconds": round(max(0.0, times[steps[0]] - steps[0] * per_step), 2)}
        print(f"resnet50 {block}: {costs[stage]['ms_per_step']} ms/step on this CPU", flush=True)
    return costs


def resnet50_estimate(costs: dict, cores: int, efficiency: float) -> dict:
    """A full ResNet-50 atlas (512 steps a unit) from the measured per-stage costs: on this
    CPU's cores (one worker each, at the measured scaling efficiency), and on N GPUs scaled
    from the H100 reference (an estimate)."""
    reference = costs["layer3"]["ms_per_step"]
    gpu_unit = H100_SHEET["seconds"] / H100_SHEET["units"]  # s per unit at layer3.5, end to end
    stages, cpu_seconds, gpu_seconds = [], 0.0, 0.0
    for stage, blocks, channels in RESNET50_STAGES:
        units = blocks * channels
        relative = costs[stage]["ms_per_step"] / reference
        cpu_unit = costs[stage]["setup_seconds"] + H100_SHEET["steps"] * \
            costs[stage]["ms_per_step"] / 1000
        stages.append({"stage": stage, "units": units, "relative_cost": round(relative, 2),
                       "cpu_seconds_per_unit": round(cpu_unit, 1),
                       "gpu_seconds_per_unit_estimate": round(gpu_unit * relative, 3)})
        cpu_seconds += units * cpu_unit
        gpu_seconds += units * gpu_unit * relative
    on_gpus = []
    for n in GPU_COUNTS:
        seconds = STARTUP_SECONDS + gpu_seconds / n
        on_gpus.append({"gpus": n, "hours": round(seconds / 3600, 2),
                        "gpu_hours": round(n * seconds / 3600, 2),
                        "cost_usd": round(n * seconds / 3600 * PRICE_PER_GPU_HOUR, 2)})
    return {"units": sum(s["units"] for s in stages), "steps": H100_SHEET["steps"],
            "stages": stages, "cpu_hours_one_core": round(cpu_seconds / 3600, 1),
            "cpu_hours_all_cores": round(cpu_seconds / 3600 / (cores * efficiency), 1),
            "cores": cores, "efficiency": efficiency,
            "gpu_reference": H100_SHEET, "gpu_seconds_one_gpu": round(gpu_seconds),
            "startup_seconds": STARTUP_SECONDS, "price_per_gpu_hour": PRICE_PER_GPU_HOUR,
            "on_gpus": on_gpus}


def markdown(report: dict) -> str:
    request = report["request"]
    lines = [f"Measured {report['date']} on {report['cores']} CPU cores ({report['machine']}), "
             f"torch {report['torch']}, {report['gpus']} GPU(s). Request: every unit of "
             f"{request['layer']} of {request['model']} ({request['units']} units), "
             f"{request['steps']} steps at {request['size']} px; median of "
             f"{report['rounds']} round(s). The machine is shared: its 1-minute load average "
             f"was {report['load'][0]}-{report['load'][1]} during the runs "
             f"({report['cores']} cores).", "",
             "| configuration | units/min | Ray overhead ms/task | command wall s |",
             "|---|---|---|---|"]
    for row in report["rows"]:
        overhead = "-" if "one process" in row["name"] or row["task_overhead_ms"] is None \
            else f"{row['task_overhead_ms']:.1f}"
        lines.append(f"| {row['name']} | {row['units_per_minute']:.1f} | {overhead} | "
                     f"{row['wall_seconds']:.1f} |")
    scale = report["scaling"]
    lines += ["", f"Scaling efficiency ({report['cores']} workers on {report['cores']} cores "
                  f"against {report['cores']} x 1 worker on 1 core): {scale['efficiency']}; "
                  f"speed-up of the workers over one process on every core: "
                  f"{scale['speedup_over_one_process']}."]
    estimate = report.get("resnet50")
    if estimate:
        lines += ["", "ResNet-50 atlas (every unit of its 16 blocks, "
                      f"{estimate['units']} units, {estimate['steps']} steps):", "",
                  "| stage | units | cost per step vs layer3.5 | CPU s/unit (measured here) | "
                  "GPU s/unit (estimate) |", "|---|---|---|---|---|"]
        for s in estimate["stages"]:
            lines.append(f"| {s['stage']} | {s['units']} | {s['relative_cost']} | "
                         f"{s['cpu_seconds_per_unit']} | {s['gpu_seconds_per_unit_estimate']} |")
        lines += ["", f"On one core of this CPU: {estimate['cpu_hours_one_core']} h; on its "
                      f"{estimate['cores']} cores (a worker each, efficiency "
                      f"{estimate['efficiency']}): {estimate['cpu_hours_all_cores']} h.", "",
                  "| GPUs (estimate) | hours | GPU-hours | cost at "
                  f"${estimate['price_per_gpu_hour']:g}/GPU-h |", "|---|---|---|---|"]
        for g in estimate["on_gpus"]:
            lines.append(f"| {g['gpus']} | {g['hours']} | {g['gpu_hours']} | "
                         f"${g['cost_usd']:g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, 16 steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--resnet50", action="store_true",
                        help="add ResNet-50's per-unit cost and the full-atlas estimate")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rounds, steps = (1, 16) if args.quick else (args.rounds, args.steps)
    report = throughput(rounds, steps, args.size)
    report.update(date=time.strftime("%Y-%m-%d"), machine=platform.machine(),
                  torch=torch.__version__, rounds=rounds)
    if args.resnet50:
        efficiency = report["scaling"]["efficiency"] or 1.0
        report["resnet50"] = resnet50_estimate(resnet50_costs(), report["cores"], efficiency)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "atlas.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.results / "atlas.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
