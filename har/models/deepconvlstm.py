"""DeepConvLSTM (Ordóñez & Roggen, Sensors 2016): unpadded temporal convolutions, then an LSTM."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from har.config import Section
from har.models._registry import register_model


class DeepConvLSTMParams(Section):
    """``train.deepconvlstm``"""

    conv_channels: int = Field(64, ge=1)
    conv_layers: int = Field(4, ge=1)
    kernel_size: int = Field(5, ge=1)
    lstm_hidden: int = Field(128, ge=1)
    lstm_layers: int = Field(2, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


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


@register_model("deepconvlstm", DeepConvLSTMParams)
def build(p: DeepConvLSTMParams, n_channels: int, n_classes: int) -> nn.Module:
    """Temporal convolutions, then a stacked LSTM; the last step classifies."""
    return DeepConvLSTM(n_channels, n_classes, p.conv_channels, p.conv_layers, p.kernel_size,
                        p.lstm_hidden, p.lstm_layers, p.dropout)
