"""Gabor units of known optimum, over seeds: the clean activation against two references, and
the dominant grating's orientation and frequency against the best sinusoid's.

    PYTHONPATH=. .venv/bin/python bench/gabor_seeds.py [--split held-out] [--seeds 10 15]
        [--recipes default ...] [--out FILE.json]

References: the best full-contrast sinusoidal grating, and the best two-level grating (every
pixel 0 or 1), which is the optimum in the search's [0, 1] pixels, about 1.3 times the
sinusoid's (``tests.test_known_optimum.best_binary_grating``). ``--split held-out`` uses the
tests' 4 units (tests/test_known_optimum.py); ``tuning`` 6 others, for choosing recipes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import featscope as fs
from tests.models import GaborUnits
from tests.test_known_optimum import (HELD_OUT, angle_between, best_binary_grating,
                                      best_grating, dominant_grating)

# (orientation in radians, frequency in cycles per px): none of them the tests' (HELD_OUT).
TUNING_UNITS = [(0.3, 0.12), (1.2, 0.2), (2.0, 0.16), (2.8, 0.24), (0.6, 0.09), (1.9, 0.26)]
SPLITS = {"tuning": TUNING_UNITS, "held-out": HELD_OUT}
# Recipes compared: overrides of the default (``fs.render``'s keywords).
RECIPES = {
    "default": {},
    "no finish": {"polish": 0.0},
    # Normalized gradient ascent instead of Adam (steps in proportion to the gradient: the
    # coefficients the unit responds to most grow fastest, so one grating wins).
    "gradient ascent (RMS-normalized, lr 0.1)": {"optimizer": "plain", "grad_norm": "rms",
                                                 "lr": 0.1},
    "no transforms": {"transforms": "none"},
}


def activation_summary(ratios: torch.Tensor, prefix: str) -> dict:
    """Lowest, median and how many below 95 % of a reference, of (N,) activation ratios."""
    return {f"{prefix}lowest": float(ratios.min()), f"{prefix}median": float(ratios.median()),
            f"{prefix}below_95": int((ratios < 0.95).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=list(SPLITS), default="held-out")
    parser.add_argument("--seeds", type=int, nargs=2, default=(10, 15), metavar=("FROM", "TO"))
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--out", type=Path, default=Path("bench/results/gabor-seeds.json"))
    args = parser.parse_args()
    specs = SPLITS[args.split]
    torch.manual_seed(0)
    model = GaborUnits(specs)
    references = []
    for k in range(len(specs)):
        sinusoid, theta, frequency = best_grating(model, k)
        references.append((sinusoid, best_binary_grating(model, k, theta, frequency), theta,
                           frequency))
    report = {"settings": {"split": args.split, "units": specs, "seeds": list(args.seeds),
                           "references": [{"sinusoid": s, "binary": b} for s, b, _, _
                                          in references]}}
    for name in args.recipes:
        rows, began = [], time.perf_counter()
        for seed in range(*args.seeds):
            result = fs.render(model, [fs.channel("relu", k) for k in range(len(specs))],
                               device="cpu", seed=seed, progress=False, **RECIPES[name])
            for k, (sinusoid, binary, theta, frequency) in enumerate(references):
                found_theta, found_frequency = dominant_grating(result.images[k])
                rows.append({"seed": seed, "unit": k,
                             "ratio": float(result.final[k]) / sinusoid,
                             "of_optimum": float(result.final[k]) / binary,
                             "angle_deg": angle_between(found_theta, theta),
                             "frequency_error": abs(found_frequency - frequency) / frequency})
        column = {key: torch.tensor([row[key] for row in rows])
                  for key in ("ratio", "of_optimum", "angle_deg", "frequency_error")}
        report[name] = {"rows": rows, "seconds": time.perf_counter() - began,
                        **activation_summary(column["ratio"], ""),
                        **activation_summary(column["of_optimum"], "of_optimum_"),
                        "angle_over_5": int((column["angle_deg"] > 5).sum()),
                        "frequency_over_10pc": int((column["frequency_error"] > 0.1).sum())}
        print(name, json.dumps({k: v for k, v in report[name].items() if k != "rows"}),
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
