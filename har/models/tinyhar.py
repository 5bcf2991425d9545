"""TinyHAR (Zhou et al., ISWC 2022): a compact model, ≤ 30k parameters at the defaults."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from har.config import Section
from har.models._registry import register_model


class TinyHARParams(Section):
    """``train.tinyhar``"""

    filters: int = Field(24, ge=4)
    conv_layers: int = Field(4, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


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


@register_model("tinyhar", TinyHARParams)
def build(p: TinyHARParams, n_channels: int, n_classes: int) -> nn.Module:
    """Per-channel convolutions, attention across channels, LSTM, attention over time."""
    return TinyHAR(n_channels, n_classes, p.filters, p.conv_layers, p.dropout)
