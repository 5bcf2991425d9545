"""Layers every deep model shares: input standardisation inside the network, and the wrapper that
puts it in front of a backbone. Every model takes RAW windows (batch, T, C) in physical units.

Normalisation is the first layer (``Standardize``, buffers fitted on training subjects), so the
exported ONNX graph needs no preprocessing outside it and serving cannot apply the wrong scaler.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Standardize(nn.Module):
    """(x - mean) / std per channel; mean/std are buffers so they travel with the weights."""

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_channels))
        self.register_buffer("std", torch.ones(n_channels))

    def set(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class HarNet(nn.Module):
    """Standardize → backbone. Input: raw windows (B, T, C); output: logits (B, K)."""

    def __init__(self, backbone: nn.Module, n_channels: int) -> None:
        super().__init__()
        self.standardize = Standardize(n_channels)
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.standardize(x))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
