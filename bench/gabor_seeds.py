"""The faithful finish on Gabor units of known optimum, over seeds: activation against the best
full-contrast grating's, and the dominant grating's orientation and frequency against it.

    PYTHONPATH=. .venv/bin/python bench/gabor_seeds.py [--seeds 10 15] [--out FILE.json]

Uses the tests' held-out Gabor units (tests/test_known_optimum.py). Compares the default
``featscope`` preset with its earlier finish (20 % of the steps at lr 0.1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import featscope as fs
from tests.models import GaborUnits
from tests.test_known_optimum import HELD_OUT, angle_between, best_grating, dominant_grating

FINISHES = {"default": {}, "earlier finish (20 % at lr 0.1)": {"polish": 0.2, "polish_lr": 0.1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=(10, 15), metavar=("FROM", "TO"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/gabor-seeds.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = GaborUnits(HELD_OUT)
    best = [best_grating(model, k) for k in range(len(HELD_OUT))]
    report = {}
    for name, options in FINISHES.items():
        rows = []
        for seed in range(*args.seeds):
            result = fs.render(model, [fs.channel("relu", k) for k in range(len(HELD_OUT))],
                               device="cpu", seed=seed, progress=False, **options)
            for k, (optimum, theta, frequency) in enumerate(best):
                found_theta, found_frequency = dominant_grating(result.images[k])
                rows.append({"seed": seed, "unit": k,
                             "ratio": float(result.final[k]) / optimum,
                             "angle_deg": angle_between(found_theta, theta),
                             "frequency_error": abs(found_frequency - frequency) / frequency})
        ratios = torch.tensor([r["ratio"] for r in rows])
        angles = torch.tensor([r["angle_deg"] for r in rows])
        errors = torch.tensor([r["frequency_error"] for r in rows])
        report[name] = {"rows": rows, "lowest": float(ratios.min()),
                        "median": float(ratios.median()),
                        "below_95": int((ratios < 0.95).sum()),
                        "angle_over_5": int((angles > 5).sum()),
                        "frequency_over_10pc": int((errors > 0.1).sum())}
        print(name, json.dumps({k: v for k, v in report[name].items() if k != "rows"}),
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
