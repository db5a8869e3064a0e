"""Small models built for the tests, with known answers."""

import torch
from torch import nn


class LinearUnit(nn.Module):
    """y = W x: the optimum of y_k under |x| <= r is r * W_k / |W_k|."""

    def __init__(self, features: int = 16, outputs: int = 4):
        super().__init__()
        self.fc = nn.Linear(features, outputs, bias=False)

    def forward(self, x):
        return self.fc(x)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ConvNet(nn.Module):
    """conv -> ReLU(inplace) -> conv -> pool -> fc for 1, 2 or 3 map dims."""

    def __init__(self, dims: int = 2, channels: int = 3):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        pool = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[dims]
        self.conv1 = conv(channels, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv(8, 6, 3, padding=1)
        self.pool = pool(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = self.conv2(self.relu(self.conv1(x)))
        return self.fc(self.pool(x).flatten(1))


class ChannelsLast(nn.Module):
    """(B, T, F) sequences; ``proj`` outputs (B, T, C) with features last."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.proj(x).mean(1))


class DetachedBranch(nn.Module):
    """``const`` produces an output that does not depend on the input at all."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.const = nn.Identity()

    def forward(self, x):
        features = self.conv(x)
        with torch.no_grad():
            detached = self.const(features * 2)
        return features.mean() + detached.mean()


def gabor_kernel(theta: float, frequency: float, size: int = 15, sigma: float = 3.0) -> torch.Tensor:
    """(size, size) zero-mean Gabor filter: orientation ``theta`` (radians), ``frequency``
    (cycles per pixel), Gaussian envelope of ``sigma`` px."""
    import math
    r = torch.arange(size).float() - size // 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    along = x * math.cos(theta) + y * math.sin(theta)
    kernel = torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) * torch.cos(
        2 * math.pi * frequency * along)
    return kernel - kernel.mean()


class GaborUnits(nn.Module):
    """Units whose optimum is known: ReLU of a Gabor filter (the same on R, G and B), mean
    pooled by the objective: a grating of the filter's orientation and frequency."""

    input_shape = (3, 48, 48)

    def __init__(self, specs: list[tuple[float, float]]):
        super().__init__()
        self.specs = specs
        self.conv = nn.Conv2d(3, len(specs), 15, bias=False)
        with torch.no_grad():
            for k, (theta, frequency) in enumerate(specs):
                self.conv.weight[k] = gabor_kernel(theta, frequency)[None].expand(3, -1, -1) / 3
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))
