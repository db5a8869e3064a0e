"""Plots of inputs that are not images: a signal's waveform and spectrogram with labelled
axes, and a volume's slices as a montage. Drawn with Pillow (no plotting dependency)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

INK = (30, 30, 30)
GRID = (225, 225, 225)
WAVE = (31, 111, 235)
# A perceptually ordered dark-to-bright colour map (anchors of matplotlib's "magma").
MAGMA = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                  [245, 125, 21], [250, 193, 39], [252, 253, 191]], dtype=np.float64)


def _font(size: int = 11) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values between ``low`` and ``high`` (1, 2 or 5 x 10^k apart)."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.0e}"


def spectrogram(signal: torch.Tensor, window: int = 64) -> torch.Tensor:
    """log magnitude STFT (F, T) of a (L,) signal; F = window // 2 + 1 frequencies."""
    window = min(window, max(4, 2 ** int(math.log2(max(signal.numel() // 4, 4)))))
    spec = torch.stft(signal.float(), n_fft=window, hop_length=max(1, window // 4),
                      window=torch.hann_window(window), return_complex=True)
    return spec.abs().add(1e-6).log()


class _Panel:
    """A plot area inside a canvas, with axes, ticks and labels around it."""

    LEFT, RIGHT, TOP, BOTTOM = 52, 10, 8, 34

    def __init__(self, canvas: Image.Image, top: int, width: int, height: int):
        self.canvas, self.draw = canvas, ImageDraw.Draw(canvas)
        self.x0, self.y0 = self.LEFT, top + self.TOP
        self.w = width - self.LEFT - self.RIGHT
        self.h = height - self.TOP - self.BOTTOM

    def x_axis(self, low: float, high: float, label: str) -> None:
        font = _font()
        for tick in nice_ticks(low, high, 6):
            x = self.x0 + (tick - low) / (high - low) * (self.w - 1)
            self.draw.line([(x, self.y0 + self.h), (x, self.y0 + self.h + 4)], fill=INK)
            self.draw.text((x, self.y0 + self.h + 5), _label(tick), fill=INK, font=font,
                           anchor="mt")
        self.draw.text((self.x0 + self.w / 2, self.y0 + self.h + 19), label, fill=INK, font=font,
                       anchor="mt")

    def y_axis(self, low: float, high: float, label: str, grid: bool = False) -> None:
        font = _font()
        for tick in nice_ticks(low, high, 4):
            y = self.y0 + self.h - 1 - (tick - low) / (high - low) * (self.h - 1)
            if grid:
                self.draw.line([(self.x0, y), (self.x0 + self.w - 1, y)], fill=GRID)
            self.draw.line([(self.x0 - 4, y), (self.x0, y)], fill=INK)
            self.draw.text((self.x0 - 6, y), _label(tick), fill=INK, font=font, anchor="rm")
        self.draw.text((4, self.y0 + self.h / 2), label, fill=INK, font=font, anchor="lm")

    def frame(self) -> None:
        self.draw.rectangle([self.x0 - 1, self.y0 - 1, self.x0 + self.w, self.y0 + self.h],
                            outline=INK)


def _waveform(panel: _Panel, signal: np.ndarray) -> None:
    """Each pixel column shows the min..max of its samples, so long signals stay readable."""
    length = len(signal)
    to_y = lambda v: panel.y0 + (1 - (np.clip(v, -1, 1) + 1) / 2) * (panel.h - 1)  # noqa: E731
    if length <= panel.w:
        xs = panel.x0 + np.linspace(0, panel.w - 1, length)
        panel.draw.line(list(zip(xs.tolist(), to_y(signal).tolist())), fill=WAVE, width=1)
        return
    edges = np.linspace(0, length, panel.w + 1).astype(int)
    for column in range(panel.w):
        chunk = signal[edges[column]:max(edges[column + 1], edges[column] + 1)]
        x = panel.x0 + column
        panel.draw.line([(x, float(to_y(chunk.max()))), (x, float(to_y(chunk.min())))], fill=WAVE)


def _colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> (H, W, 3) uint8 in the MAGMA colour map."""
    position = np.clip(values, 0, 1) * (len(MAGMA) - 1)
    low = np.floor(position).astype(int).clip(0, len(MAGMA) - 2)
    t = (position - low)[..., None]
    return ((1 - t) * MAGMA[low] + t * MAGMA[low + 1]).round().astype(np.uint8)


def signal_plot(signal: torch.Tensor, sample_rate: float | None = None, width: int = 560,
                height: int = 190) -> Image.Image:
    """The waveform (amplitude over time) above its spectrogram (frequency over time), both
    with labelled axes: seconds and Hz with a ``sample_rate``, samples and cycles per sample
    without one."""
    values = signal.detach().cpu().float().numpy()
    canvas = Image.new("RGB", (width, 2 * height), (255, 255, 255))
    seconds = sample_rate is not None
    duration = len(values) / sample_rate if seconds else len(values)
    time_label = "time (s)" if seconds else "time (samples)"

    wave = _Panel(canvas, 0, width, height)
    wave.y_axis(-1, 1, "", grid=True)
    _waveform(wave, values)
    wave.frame()
    wave.x_axis(0, duration, time_label)
    wave.draw.text((wave.x0 + 4, wave.y0 + 2), "amplitude", fill=INK, font=_font())

    spec = spectrogram(signal.detach().cpu())
    scaled = ((spec - spec.min()) / (spec.max() - spec.min()).clamp_min(1e-12)).flip(0).numpy()
    panel = _Panel(canvas, height, width, height)
    picture = Image.fromarray(_colour(scaled)).resize((panel.w, panel.h), Image.Resampling.NEAREST)
    canvas.paste(picture, (panel.x0, panel.y0))
    nyquist = sample_rate / 2 if seconds else 0.5
    panel.y_axis(0, nyquist, "")
    panel.frame()
    panel.x_axis(0, duration, time_label)
    panel.draw.text((panel.x0 + 4, panel.y0 + 2), "frequency (Hz)" if seconds
                    else "frequency (cycles/sample)", fill=(255, 255, 255), font=_font())
    return canvas


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
