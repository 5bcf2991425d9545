"""What a model costs: multiply-adds per window (torch's own ``torch.utils.flop_counter``),
parameters, and the size of its ONNX file on disk.

The flop counter knows convolutions and matrix products but not the fused LSTM kernel torch runs on
CPU (aten.mkldnn_rnn_layer), so its formula is registered here (4 gates × (input + hidden) × hidden
multiply-adds per step and layer): without it DeepConvLSTM and TinyHAR would look several times
cheaper than they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from har.training.bundle import TrainedModel


def _rnn_layer_flops(input_shape: Any, w_ih: Any, w_hh: Any, *args: Any, out_shape: Any = None,
                     **kwargs: Any) -> int:
    """aten.mkldnn_rnn_layer (one LSTM layer on CPU): 2 FLOPs per multiply-add of the input and
    hidden products of all four gates, at every step of every sequence."""
    steps_times_batch = int(input_shape[0]) * int(input_shape[1])
    return 2 * steps_times_batch * (int(w_ih[0]) * int(w_ih[1]) + int(w_hh[0]) * int(w_hh[1]))


def macs_per_window(net: torch.nn.Module, window_len: int, n_channels: int) -> int:
    """Multiply-adds of one forward pass on one window."""
    mapping = {torch.ops.aten.mkldnn_rnn_layer: _rnn_layer_flops}  # keyed by overload packet
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        net.eval()(torch.zeros(1, window_len, n_channels))
    return int(counter.get_total_flops() // 2)


def model_cost(model: TrainedModel, onnx_path: Path | None = None) -> dict[str, Any]:
    """``macs`` per window, ``params`` (tree nodes for the classic model, whose trees the counter
    cannot see: its ``macs`` are the feature extractor's) and ``onnx_bytes``."""
    meta = model.meta
    if model.is_deep:
        from har.models._layers import n_parameters

        macs = macs_per_window(model.net, meta.window_len, len(meta.channels))
        params = n_parameters(model.net)
    else:
        macs = macs_per_window(model.classic.extractor, meta.window_len, len(meta.channels))
        params = int(model.classic.n_params)
    return {"macs": macs, "params": params,
            "onnx_bytes": onnx_path.stat().st_size if onnx_path is not None and onnx_path.is_file() else None}
