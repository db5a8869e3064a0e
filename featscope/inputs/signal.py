"""1-D signals (C, L), such as audio: amplitude in [-1, 1]; written as .npy, a .wav (with a
sample rate) and a plot of the waveform and its spectrogram."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import torch

from ..drawing.plots import signal_plot
from ..errors import FeatscopeError
from ..files.writing import atomic_write, save_npy, save_png
from ..params.base import Parameterization
from ..randomness import UnitRandom, per_element


@dataclass
class Signal:
    """Signals (C, L) with amplitude x = tanh(v) in [-1, 1], like audio samples."""

    sample_rate: int | None = None  # Hz; with it a .wav is written
    name: str = "signal"

    def __post_init__(self) -> None:
        if self.sample_rate is not None and not 1 <= self.sample_rate <= 2**31 - 1:
            raise FeatscopeError(f"the sample rate must be a positive number of samples per "
                                 f"second (got {self.sample_rate})")

    def parameterize(self, shape: tuple[int, ...], random: UnitRandom | torch.Generator,
                     device: torch.device, sd: float = 0.01) -> Parameterization:
        draws = per_element(random, shape[0], *shape[1:], normal=True)
        values = draws.mul_(sd).to(device).requires_grad_(True)
        return Parameterization([values], lambda: torch.tanh(values), "signal")

    def save(self, x: torch.Tensor, folder: Path, stem: str, **extras) -> dict[str, str]:
        """x: (C, L)."""
        files = {"npy": save_npy(x, folder / f"{stem}.npy")}
        if self.sample_rate:
            files["wav"] = save_wav(x, self.sample_rate, folder / f"{stem}.wav")
        files["plot"] = save_png(signal_plot(x[0], self.sample_rate), folder / f"{stem}.png")
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


def dominant_frequency(signal: torch.Tensor, sample_rate: float = 1.0) -> float:
    """The frequency (in cycles per sample times ``sample_rate``) of the largest FFT peak."""
    centered = signal.detach().cpu().float() - signal.float().mean()
    magnitude = torch.fft.rfft(centered).abs()
    return float(magnitude.argmax()) * sample_rate / signal.numel()
