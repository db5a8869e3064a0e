"""Input kinds beyond images: how each is searched over, and how its result is written.

The search, objectives and pooling are the same for every kind; a kind only supplies

- ``parameterize(shape, generator, device)``: the variables and the map to a model input
  (B, ...), which keeps the input in its natural domain;
- ``save(x, folder, stem)``: files a person can use, returned as {label: path}.

Kinds: ``signal`` (C, L) 1-D signals such as audio, ``volume`` (C, D, H, W), ``vector`` (F,)
tabular features with optional per-feature bounds, ``tokens``: embeddings (T, D) searched in
the continuous space of an embedding layer and reported as their nearest tokens.
"""

from __future__ import annotations

import csv
import io
import json
import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .errors import FeatscopeError
from .objectives import Objective, batch_scores
from .outputs import atomic_write, save_png
from .parameterizations import Parameterization, tensor
from .probing import Probe, frozen

KINDS = ("image", "signal", "volume", "vector", "tokens", "tensor")


def infer_kind(input_shape: Sequence[int]) -> str:
    """The kind a model input of ``input_shape`` (no batch dim) most likely is."""
    dims = len(input_shape)
    if dims == 3 and input_shape[0] in (1, 3):
        return "image"
    return {1: "vector", 2: "signal", 4: "volume"}.get(dims, "tensor")


@dataclass
class Raw:
    """Any other input shape: a raw tensor, written as .npy."""

    max_norm: float | None = None
    name: str = "tensor"

    def parameterize(self, shape: tuple[int, ...], generator: torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        return tensor(shape, generator=generator, device=device, sd=sd, max_norm=self.max_norm)

    def save(self, x: torch.Tensor, folder: Path, stem: str) -> dict[str, str]:
        return {"npy": str(save_npy(x, folder / f"{stem}.npy"))}


def _randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device,
           sd: float) -> torch.Tensor:
    # Drawn on the CPU so that a seed gives the same start on every device.
    return torch.randn(shape, generator=generator).mul_(sd).to(device).requires_grad_(True)


def save_npy(array: torch.Tensor, path: Path) -> Path:
    atomic_write(path, lambda stream: np.save(stream, array.detach().cpu().numpy()))
    return path


# --- signals --------------------------------------------------------------------------------

@dataclass
class Signal:
    """1-D signals (C, L) with amplitude in [-1, 1] (x = tanh(v)), like audio samples."""

    sample_rate: int | None = None  # Hz; with it a .wav is written
    name: str = "signal"

    def __post_init__(self) -> None:
        if self.sample_rate is not None and not 1 <= self.sample_rate <= 2**31 - 1:
            raise FeatscopeError(f"the sample rate must be a positive number of samples per "
                                 f"second (got {self.sample_rate})")

    def parameterize(self, shape: tuple[int, ...], generator: torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        values = _randn(shape, generator, device, sd)
        return Parameterization([values], lambda: torch.tanh(values), "signal")

    def save(self, x: torch.Tensor, folder: Path, stem: str) -> dict[str, str]:
        """x: (C, L)."""
        files = {"npy": save_npy(x, folder / f"{stem}.npy")}
        if self.sample_rate:
            files["wav"] = save_wav(x, self.sample_rate, folder / f"{stem}.wav")
        files["plot"] = save_png(signal_plot(x[0]), folder / f"{stem}.png")
        return {k: str(v) for k, v in files.items()}


def save_wav(x: torch.Tensor, sample_rate: int, path: Path) -> Path:
    """(C, L) in [-1, 1] -> 16-bit PCM, one wav channel per signal channel."""
    pcm = (x.detach().cpu().clamp(-1, 1) * 32767).round().to(torch.int16).T.contiguous()

    def write(stream) -> None:
        with wave.open(stream, "wb") as out:
            out.setnchannels(x.shape[0])
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.numpy().tobytes())

    atomic_write(path, write)
    return path


def spectrogram(signal: torch.Tensor, window: int = 64) -> torch.Tensor:
    """log magnitude STFT (F, T) of a (L,) signal."""
    window = min(window, max(4, 2 ** int(math.log2(max(signal.numel() // 4, 4)))))
    spec = torch.stft(signal.float(), n_fft=window, hop_length=max(1, window // 4),
                      window=torch.hann_window(window), return_complex=True)
    return spec.abs().add(1e-6).log()


def signal_plot(signal: torch.Tensor, width: int = 512, height: int = 160) -> Image.Image:
    """The waveform above its spectrogram (low frequencies at the bottom), one image."""
    signal = signal.detach().cpu()
    wave_img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(wave_img)
    xs = np.linspace(0, width - 1, signal.numel())
    ys = (1 - (signal.clamp(-1, 1).numpy() + 1) / 2) * (height - 1)
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=0)
    spec = spectrogram(signal)
    spec = (spec - spec.min()) / (spec.max() - spec.min()).clamp_min(1e-12)
    spec_img = Image.fromarray((spec.flip(0).numpy() * 255).astype(np.uint8)).resize(
        (width, height), Image.NEAREST)
    both = Image.new("L", (width, 2 * height + 4), 255)
    both.paste(wave_img, (0, 0))
    both.paste(spec_img, (0, height + 4))
    return both.convert("RGB")


def dominant_frequency(signal: torch.Tensor, sample_rate: float = 1.0) -> float:
    """The frequency (in cycles per sample times ``sample_rate``) of the largest FFT peak."""
    centered = signal.detach().cpu().float() - signal.float().mean()
    magnitude = torch.fft.rfft(centered).abs()
    return float(magnitude.argmax()) * sample_rate / signal.numel()


# --- volumes --------------------------------------------------------------------------------

@dataclass
class Volume:
    """Volumes (C, D, H, W), searched as a raw tensor; written as .npy and a slice montage."""

    max_norm: float | None = None
    name: str = "volume"

    def parameterize(self, shape: tuple[int, ...], generator: torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        return tensor(shape, generator=generator, device=device, sd=sd, max_norm=self.max_norm)

    def save(self, x: torch.Tensor, folder: Path, stem: str) -> dict[str, str]:
        """x: (C, D, H, W)."""
        npy = save_npy(x, folder / f"{stem}.npy")
        png = save_png(montage(x), folder / f"{stem}.png")
        return {"npy": str(npy), "montage": str(png)}


def montage(volume: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """(C, D, H, W) -> (1 or 3, rows*H, columns*W) grid of the D slices in [0, 1].

    One colour scale for the whole volume, so that slices compare; more than 3 channels are
    averaged to one.
    """
    v = volume.detach().cpu().float()
    v = v if v.shape[0] in (1, 3) else v.mean(0, keepdim=True)
    v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12)
    channels, depth, height, width = v.shape
    columns = columns or math.ceil(math.sqrt(depth))
    rows = math.ceil(depth / columns)
    grid = torch.ones(channels, rows * height, columns * width)
    for d in range(depth):
        r, c = divmod(d, columns)
        grid[:, r * height:(r + 1) * height, c * width:(c + 1) * width] = v[:, d]
    return grid


# --- vectors --------------------------------------------------------------------------------

@dataclass
class Vector:
    """Tabular feature vectors (F,), each feature kept inside its [low, high] bounds.

    Bounds are kept by reparameterization, so every step of the search stays feasible:
    both bounds finite: x = low + (high - low) * sigmoid(v); only low: x = low + softplus(v);
    only high: x = high - softplus(v); none: x = v.
    """

    names: list[str] | None = None
    low: torch.Tensor | None = None  # (F,), -inf where unbounded
    high: torch.Tensor | None = None  # (F,), +inf where unbounded
    name: str = "vector"

    def parameterize(self, shape: tuple[int, ...], generator: torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        features = shape[-1]
        low = self._bound(self.low, features, -math.inf).to(device)
        high = self._bound(self.high, features, math.inf).to(device)
        values = _randn(shape, generator, device, sd)
        only_low, only_high = low.isfinite(), high.isfinite()
        both = only_low & only_high
        safe_low, safe_high = low.nan_to_num(0, 0, 0), high.nan_to_num(0, 0, 0)

        def value() -> torch.Tensor:
            sig = safe_low + (safe_high - safe_low) * torch.sigmoid(values)
            soft = torch.nn.functional.softplus(values)
            return torch.where(both, sig, torch.where(only_low, safe_low + soft,
                               torch.where(only_high, safe_high - soft, values)))

        return Parameterization([values], value, "bounded vector")

    def _bound(self, bound: torch.Tensor | None, features: int, fill: float) -> torch.Tensor:
        if bound is None:
            return torch.full((features,), fill)
        if bound.numel() != features:
            raise FeatscopeError(f"the bounds give {bound.numel()} features but the model's "
                                 f"input has {features}")
        return bound.float()

    def feature_names(self, features: int) -> list[str]:
        return list(self.names) if self.names else [f"x{i}" for i in range(features)]

    def save(self, x: torch.Tensor, folder: Path, stem: str) -> dict[str, str]:
        """x: (F,) -> CSV (feature,value) and JSON {feature: value}."""
        values = x.detach().cpu().float().tolist()
        names = self.feature_names(len(values))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["feature", "value"])
        writer.writerows(zip(names, values))
        csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
        atomic_write(csv_path, lambda stream: stream.write(buffer.getvalue().encode()))
        text = json.dumps(dict(zip(names, values)), indent=2) + "\n"
        atomic_write(json_path, lambda stream: stream.write(text.encode()))
        return {"csv": str(csv_path), "json": str(json_path)}


def read_bounds(path: str | Path) -> Vector:
    """Bounds from a CSV with columns ``feature,low,high`` (empty cell: unbounded) or a JSON
    object ``{"feature": [low, high], ...}`` (null: unbounded), in the model's feature order."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix == ".json":
            content = json.loads(text)
            if not isinstance(content, dict) or not all(
                    isinstance(v, list) and len(v) == 2 for v in content.values()):
                raise ValueError("the JSON must map each feature to [low, high]")
            rows = [(k, *v) for k, v in content.items()]
        else:
            rows = [(r["feature"], r["low"], r["high"]) for r in csv.DictReader(io.StringIO(text))]
        names = [str(r[0]) for r in rows]
        low = torch.tensor([_number(r[1], -math.inf) for r in rows])
        high = torch.tensor([_number(r[2], math.inf) for r in rows])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise FeatscopeError(
            f"cannot read bounds file {str(path)!r} ({error.__class__.__name__}: {error}). "
            "Expected a CSV with columns feature,low,high or a JSON "
            '{"feature": [low, high]}; leave a bound empty/null for none') from None
    if not rows:
        raise FeatscopeError(f"bounds file {str(path)!r} lists no features")
    bad = [n for n, lo, hi in zip(names, low.tolist(), high.tolist()) if not lo < hi]
    if bad:
        raise FeatscopeError(f"bounds file {str(path)!r}: low must be below high for "
                             f"feature(s) {', '.join(bad)}")
    return Vector(names, low, high)


def _number(cell: object, missing: float) -> float:
    return missing if cell is None or str(cell).strip() == "" else float(cell)


# --- token sequences ------------------------------------------------------------------------

@dataclass
class Tokens:
    """Sequences of T token embeddings (T, D), searched in the embedding layer's space.

    Each position is kept inside the ball of the longest row of the embedding table, so that
    the search stays near the region real tokens occupy. The result is reported as the
    nearest real token at each position (cosine similarity), with the objective of those
    hard tokens next to the soft one: the gap says how much of the optimum real text reaches.
    """

    table: torch.Tensor  # (V, D) embedding matrix
    vocab: list[str] | None = None
    name: str = "tokens"

    def parameterize(self, shape: tuple[int, ...], generator: torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        radius = float(self.table.detach().norm(dim=1).max())
        # Start at random real-token scale, not at zero (where every position is alike).
        values = _randn(shape, generator, device, radius / math.sqrt(shape[-1]))

        def value() -> torch.Tensor:
            norms = values.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return values * (radius / norms).clamp(max=1.0)

        return Parameterization([values], value, "token embeddings")

    def nearest(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T, D) soft embeddings -> (B, T) ids of the nearest tokens by cosine similarity."""
        table = torch.nn.functional.normalize(self.table.detach().cpu().float(), dim=1)
        soft = torch.nn.functional.normalize(embeddings.detach().cpu().float(), dim=-1)
        return (soft @ table.T).argmax(dim=-1)

    def token(self, index: int) -> str:
        return self.vocab[index] if self.vocab and index < len(self.vocab) else str(index)

    def save(self, x: torch.Tensor, folder: Path, stem: str) -> dict[str, str]:
        """x: (T, D) soft embeddings -> .npy and a JSON of the nearest tokens."""
        ids = self.nearest(x[None])[0].tolist()
        report = {"token_ids": ids, "tokens": [self.token(i) for i in ids]}
        npy = save_npy(x, folder / f"{stem}.npy")
        path = folder / f"{stem}.tokens.json"
        text = json.dumps(report, indent=2) + "\n"
        atomic_write(path, lambda stream: stream.write(text.encode()))
        return {"npy": str(npy), "tokens": str(path)}


def hard_token_scores(module: torch.nn.Module, objectives: Sequence[Objective],
                      ids: torch.Tensor) -> torch.Tensor:
    """The objectives (B,) on real token ids (B, T), for the soft-vs-hard gap."""
    layers = sorted(frozenset().union(*(o.layers for o in objectives)))
    device = next(module.parameters(), torch.empty(0)).device
    with frozen(module), Probe(module, layers) as probe, torch.no_grad():
        return batch_scores(list(objectives), probe.run(ids.to(device))).cpu()


def read_vocab(path: str | Path) -> list[str]:
    """One token per line, in id order."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise FeatscopeError(f"cannot read vocabulary {str(path)!r}: {error}; expected a text "
                             "file with one token per line, in id order") from None
