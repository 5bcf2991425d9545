"""Models: a feature + scikit-learn baseline and torch networks, built by name from params."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from har.config import TrainParams
    from har.models.deep import HarNet

DEEP_MODELS = ("cnn1d", "deepconvlstm", "tinyhar")
ALL_MODELS = ("classic", *DEEP_MODELS)


def build_model(name: str, tp: TrainParams, n_channels: int, n_classes: int) -> HarNet:
    """A deep model by name, sized by its params.yaml subsection (train.<name>)."""
    from har.models.deep import CNN1D, DeepConvLSTM, HarNet, TinyHAR

    if name == "cnn1d":
        c = tp.cnn1d
        backbone = CNN1D(n_channels, n_classes, c.channels, c.kernel_size, c.dropout)
    elif name == "deepconvlstm":
        d = tp.deepconvlstm
        backbone = DeepConvLSTM(n_channels, n_classes, d.conv_channels, d.conv_layers, d.kernel_size,
                                d.lstm_hidden, d.lstm_layers, d.dropout)
    elif name == "tinyhar":
        t = tp.tinyhar
        backbone = TinyHAR(n_channels, n_classes, t.filters, t.conv_layers, t.dropout)
    else:
        raise ValueError(f"train.model: unknown deep model {name!r}; expected one of {DEEP_MODELS}")
    return HarNet(backbone, n_channels)
