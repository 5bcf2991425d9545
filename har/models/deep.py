"""Deep models in torch. Every model takes RAW windows (batch, T, C) in physical units.

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


class CNN1D(nn.Module):
    """Temporal conv blocks (conv-BN-ReLU, pool) then global average+max pooling: the CNN-HAR family."""

    def __init__(self, n_channels: int, n_classes: int, channels: list[int], kernel_size: int,
                 dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_channels
        for i, c_out in enumerate(channels):
            layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                       nn.BatchNorm1d(c_out), nn.ReLU()]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool1d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c_in, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, C)
        h = self.features(x.transpose(1, 2))
        return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


class DeepConvLSTM(nn.Module):
    """Ordóñez & Roggen (2016): unpadded temporal convolutions, then a 2-layer LSTM; last step."""

    def __init__(self, n_channels: int, n_classes: int, conv_channels: int, conv_layers: int,
                 kernel_size: int, lstm_hidden: int, lstm_layers: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_channels
        for _ in range(conv_layers):
            layers += [nn.Conv1d(c_in, conv_channels, kernel_size), nn.ReLU()]
            c_in = conv_channels
        self.conv = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(conv_channels, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.head = nn.Linear(lstm_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T', F)
        out, _ = self.lstm(self.dropout(h))
        return self.head(self.dropout(out[:, -1]))


class _ChannelAttention(nn.Module):
    """Single-head self-attention across sensor channels (per time step), with residual + norm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.scale = dim ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, F)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = torch.softmax(q @ k.transpose(1, 2) * self.scale, dim=-1)
        return self.norm(x + attn @ v)


class TinyHAR(nn.Module):
    """A compact TinyHAR-style model (Zhou et al., ISWC 2022), ≤ 30k parameters at defaults.

    Per-channel temporal convolutions → self-attention across channels → channel fusion →
    LSTM over time → attention pooling over time. The structure follows the paper; widths are
    reduced so the whole model stays under 30k parameters.
    """

    def __init__(self, n_channels: int, n_classes: int, filters: int, conv_layers: int,
                 dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(conv_layers):
            # the same temporal filters for every sensor channel: channels are folded into the batch
            # and convolved with Conv1d, which is several times faster on CPU than Conv2d (k, 1)
            layers += [nn.Conv1d(c_in, filters, 5, stride=2 if i % 2 == 1 else 1, padding=2, bias=False),
                       nn.BatchNorm1d(filters), nn.ReLU()]
            c_in = filters
        self.conv = nn.Sequential(*layers)
        self.channel_attn = _ChannelAttention(filters)
        self.fuse = nn.Sequential(nn.Linear(n_channels * filters, filters), nn.ReLU())
        self.lstm = nn.LSTM(filters, filters, batch_first=True)
        self.time_score = nn.Linear(filters, 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        h = self.conv(x.transpose(1, 2).reshape(b * c, 1, -1))  # (B*C, F, T')
        f, t = h.shape[1], h.shape[2]
        h = h.reshape(b, c, f, t).permute(0, 3, 1, 2).reshape(b * t, c, f)
        h = self.channel_attn(h).reshape(b, t, c * f)
        h, _ = self.lstm(self.fuse(h))  # (B, T', F)
        w = torch.softmax(self.time_score(h), dim=1)
        return self.head((w * h).sum(dim=1))


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
