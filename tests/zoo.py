"""Small models for the loader, input-kind and hardening tests (each a zero-argument factory,
so the command line loads them as ``tests.zoo:NAME``)."""

import math
from dataclasses import dataclass

import torch
from torch import nn

SIGNAL_LENGTH = 128
# A unit tuned to 16 cycles per 128 samples, another to 5: Hann-windowed cosine kernels of
# 32 taps, followed by squaring, so that a unit measures the energy at its frequency.
TUNED_CYCLES = (16, 5)


class Square(nn.Module):
    def forward(self, x):
        return x * x


class FrequencyDetector(nn.Module):
    """(B, 1, 128) -> energy (B, 2, 97) at ``TUNED_CYCLES`` cycles per 128 samples."""

    sample_rate = 8000

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 32, bias=False)
        self.energy = Square()
        taps = torch.arange(32).float()
        with torch.no_grad():
            for k, cycles in enumerate(TUNED_CYCLES):
                wave = torch.cos(2 * math.pi * cycles / SIGNAL_LENGTH * taps)
                self.conv.weight[k, 0] = wave * torch.hann_window(32)

    def forward(self, x):
        return self.energy(self.conv(x))


class TabularMLP(nn.Module):
    """(B, 4) tabular features -> 2 scores; unbounded, its optimum is at infinity."""

    feature_names = ["age", "income", "height", "score"]
    input_shape = (4,)  # read by the factory loader when --input-shape is not given

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class VolumeNet(nn.Module):
    """(B, 1, 6, 8, 8) volumes -> conv features (B, 3, 6, 8, 8)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3, 4))


class TinyTransformer(nn.Module):
    """Token ids (B, T) -> class scores (B, 3); vocab of 20 tokens."""

    vocab = [f"tok{i}" for i in range(20)]

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(20, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)).mean(1))


class TupleOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        features = self.conv(x).mean(dim=(2, 3))
        return features, self.head(features)


class DictOutput(TupleOutput):
    def forward(self, x):
        features, logits = super().forward(x)
        return {"features": features, "logits": logits}


@dataclass
class Prediction:
    features: torch.Tensor
    logits: torch.Tensor


class DataclassOutput(TupleOutput):
    def forward(self, x):
        return Prediction(*super().forward(x))


class TwoInputs(nn.Module):
    """image (B, 3, 8, 8) and metadata (B, 4) -> 3 scores."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.meta = nn.Linear(4, 4)
        self.head = nn.Linear(8, 3)

    def forward(self, image, metadata):
        pooled = self.conv(image).mean(dim=(2, 3))
        return self.head(torch.cat([pooled, self.meta(metadata)], dim=1))


class NaNForLargeInputs(nn.Module):
    """Unit 0 is fine; unit 1 is log(2 - max|x|), NaN once any |x| passes 2."""

    def forward(self, x):
        fine = x.sum(dim=1)
        fragile = x.sum(dim=1) + torch.log(2 - x.abs().amax(dim=1))
        return torch.stack([fine, fragile], dim=1)


class OutOfMemoryAbove(nn.Module):
    """Raises CUDA's out-of-memory error for batches larger than ``limit``."""

    limit = 2

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.fc(x)


class NoGradientPaths(nn.Module):
    """Layers cut off from the input: an integer cast, an argmax, a no_grad block."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.rounded = nn.Identity()
        self.chosen = nn.Identity()
        self.detached = nn.Identity()

    def forward(self, x):
        h = self.fc(x)
        as_int = self.rounded(h.to(torch.int64).float())
        chosen = self.chosen(nn.functional.one_hot(h.argmax(1), 6).float())
        with torch.no_grad():
            detached = self.detached(h * 2)
        return h + as_int + chosen + detached


class InterruptAfter(nn.Module):
    """Raises KeyboardInterrupt (as Ctrl-C would) on forward pass number ``calls``."""

    calls = 30

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.count = 0

    def forward(self, x):
        self.count += 1
        if self.count == self.calls:
            raise KeyboardInterrupt
        return self.fc(x)
