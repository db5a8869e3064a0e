"""Run Lucent 0.1.8 on the embedded EfficientNet-Lite0 or a torchvision model, in Lucent's own
environment.

Lucent needs an old kornia, so it cannot share featscope's environment: ``speed.py`` runs this
file with the interpreter of ``bench/.lucent-venv`` (or ``$LUCENT_PYTHON``) and reads the JSON
it prints. The embedded model's architecture is imported from featscope's source file (it
needs only torch) and normalizes its own input, so Lucent runs with ``preprocess=False`` as
its users would on such a model. ``--torchvision NAME`` builds ``torchvision.models.NAME()``
with random weights (timing does not depend on them), run with Lucent's ImageNet
normalization (``preprocess=True``), as its users run torchvision models.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
from lucent.optvis import param, render  # noqa: E402


def load_model(arch_file: Path, weights: Path) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("efficientnet_lite", arch_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["efficientnet_lite"] = module
    spec.loader.exec_module(module)
    net = module.EfficientNetLite()
    net.load_state_dict(torch.load(weights, map_location="cpu"))
    inner = net.forward
    net.forward = lambda x: inner((x * 255 - 127) / 128)
    return net.eval()


class _Stop(Exception):
    pass


def raw_ms_per_step(model: torch.nn.Module, layer: str, device: torch.device,
                    steps: int = 16) -> float:
    """The limit in this process: forward to ``layer`` (stopping there) and backward to a
    224 px input, weights frozen; the median step, in ms. Measured beside Lucent's runs so
    that featscope can compare both with the limit measured on the same machine state."""
    captured = []

    def hook(module, inputs, output):
        captured.append(output)
        raise _Stop

    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    x = torch.rand(1, 3, 224, 224, device=device, requires_grad=True)
    seconds = []
    try:
        for _ in range(steps + 2):
            captured.clear()
            start = time.perf_counter()
            try:
                model(x)
            except _Stop:
                pass
            captured[0][0, 0].mean().backward()
            x.grad = None
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
    finally:
        handle.remove()
        for p, flag in flags:
            p.requires_grad_(flag)
    return 1000 * float(np.median(seconds[2:]))


def torchvision_model(name: str) -> torch.nn.Module:
    import torchvision
    return getattr(torchvision.models, name)().eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", type=Path, help="the embedded model's architecture file")
    parser.add_argument("--weights", type=Path, help="the embedded model's weights")
    parser.add_argument("--torchvision", help="a torchvision model name instead (random weights)")
    parser.add_argument("--layer", required=True, help="featscope layer path, e.g. _blocks.8")
    parser.add_argument("--channels", required=True, help="comma-separated channel indices")
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--save", type=Path, required=True, help="where to write images (.npy)")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")  # Lucent's own rule
    if args.torchvision:
        model, preprocess = torchvision_model(args.torchvision).to(device), True
    else:
        model, preprocess = load_model(args.arch, args.weights).to(device), False
    lucent_layer = args.layer.replace(".", "_")  # Lucent names modules with underscores
    runs, images = [], []
    for k in (int(c) for c in args.channels.split(",")):
        raw_ms = raw_ms_per_step(model, args.layer, device)
        start = time.perf_counter()
        result = render.render_vis(model, f"{lucent_layer}:{k}",
                                   param_f=lambda: param.image(args.size),
                                   thresholds=(args.steps,), preprocess=preprocess,
                                   progress=False,
                                   show_image=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        runs.append({"channel": k, "seconds": seconds, "ms_per_step": 1000 * seconds / args.steps,
                     "raw_ms_before": raw_ms})
        images.append(result[-1][0])  # (H, W, 3) in [0, 1]
    np.save(args.save, np.stack(images))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": runs, "peak_rss_mib": peak_mib, "device": str(device)}))


if __name__ == "__main__":
    main()
