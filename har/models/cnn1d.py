"""CNN1D: temporal conv blocks (conv-BN-ReLU, pool), then global average + max pooling (the
CNN-HAR family)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from har.config import Section
from har.models._registry import register_model


class CNN1DParams(Section):
    """``train.cnn1d``"""

    channels: list[int] = Field(default_factory=lambda: [64, 64, 128], min_length=1)
    kernel_size: int = Field(5, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)


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


@register_model("cnn1d", CNN1DParams)
def build(p: CNN1DParams, n_channels: int, n_classes: int) -> nn.Module:
    """Temporal CNN, global average + max pooling."""
    return CNN1D(n_channels, n_classes, p.channels, p.kernel_size, p.dropout)
