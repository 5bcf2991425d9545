"""SepCNN: a small, fast 1-D CNN for a watch-sized budget (≤ 30k parameters, ≤ 0.5 M multiply-adds
per 3 s window at the defaults).

A strided stem halves the time axis at once, then residual blocks of depthwise-separable
convolutions (a per-channel temporal filter, then a 1×1 mix) halve it again as they widen, and
global average + max pooling feed the classifier. Most of the cost of a plain CNN sits in full
k×C×C convolutions at full rate (cnn1d: ~3 M multiply-adds); separable filters cut that by about
k times, and the early stride by another 2-4.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from har.config import Section
from har.models._registry import register_model


class SepCNNParams(Section):
    """``train.sepcnn``"""

    stem: int = Field(24, ge=4, description="channels of the strided stem convolution")
    channels: list[int] = Field(default_factory=lambda: [32, 48, 64, 64], min_length=1,
                                description="output channels of each separable block")
    strides: list[int] = Field(default_factory=lambda: [2, 1, 2, 1], min_length=1)
    kernel_size: int = Field(5, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class _SeparableBlock(nn.Module):
    """Depthwise conv (stride s) → BN → ReLU → pointwise conv → BN, plus a projected shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(c_in, c_in, kernel_size, stride=stride, padding=kernel_size // 2,
                                   groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm1d(c_in)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            pool: nn.Module = nn.AvgPool1d(stride, ceil_mode=True) if stride > 1 else nn.Identity()
            self.shortcut = nn.Sequential(pool, nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.depthwise(x)))
        h = self.bn2(self.pointwise(h))
        return self.act(h + self.shortcut(x))


class SepCNN(nn.Module):
    def __init__(self, n_channels: int, n_classes: int, stem: int, channels: list[int], strides: list[int],
                 kernel_size: int, dropout: float) -> None:
        super().__init__()
        if len(strides) != len(channels):
            raise ValueError(f"train.sepcnn: {len(channels)} channels but {len(strides)} strides")
        self.stem = nn.Sequential(
            nn.Conv1d(n_channels, stem, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(stem), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = stem
        for c_out, stride in zip(channels, strides, strict=True):
            blocks.append(_SeparableBlock(c_in, c_out, kernel_size, stride))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c_in, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, C)
        h = self.blocks(self.stem(x.transpose(1, 2)))
        return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


@register_model("sepcnn", SepCNNParams)
def build(p: SepCNNParams, n_channels: int, n_classes: int) -> nn.Module:
    """Strided stem, residual depthwise-separable blocks, average + max pooling: ≤ 30k parameters."""
    return SepCNN(n_channels, n_classes, p.stem, p.channels, p.strides, p.kernel_size, p.dropout)
