"""int8 and edge formats of an exported model, with onnxruntime's own tools.

- ``quantize_int8``: static quantisation (QDQ, per-channel int8 weights, uint8 activations)
  calibrated on training-subject windows, keeping the ``window``/``probs`` contract and the ``har.*``
  metadata, so serving loads it like any other export;
- ``to_ort``: the ORT format for mobile and embedded runtimes, written by onnxruntime itself (a
  session saving its optimised model with ``session.save_model_format=ORT``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from har.contracts import INT8_QUANTIZATION, ONNX_INPUT, ONNX_META_QUANTIZATION, WindowSpec
from har.errors import DataError
from har.io import atomic_path


class _Windows:
    """onnxruntime.quantization.CalibrationDataReader over (n, T, C) windows, in batches."""

    def __init__(self, X: np.ndarray, batch: int = 64) -> None:
        self._batches: Iterator[np.ndarray] = iter([X[i:i + batch] for i in range(0, len(X), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {ONNX_INPUT: np.ascontiguousarray(batch, dtype=np.float32)}


def check_calibration(spec: WindowSpec, X: np.ndarray, channels: list[str], source: str) -> None:
    """Calibration windows must be what the model reads: a DataError naming the difference, never a
    silent mis-quantisation (wrong channel order calibrates the wrong ranges)."""
    if channels != spec.channels:
        raise DataError(f"{source}: calibration windows have channels {channels}; the model reads "
                        f"{spec.channels}")
    if X.ndim != 3 or X.shape[1:] != (spec.window_len, len(spec.channels)):
        raise DataError(f"{source}: calibration windows have shape {list(X.shape[1:])}; the model reads "
                        f"[{spec.window_len}, {len(spec.channels)}]")
    if not len(X):
        raise DataError(f"{source}: no calibration windows")


def quantize_int8(fp32: Path, out: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantisation of ``fp32`` into ``out`` (atomically), calibrated on ``calibration``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    with tempfile.TemporaryDirectory() as d:
        prepared = Path(d) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantized = Path(d) / "int8.onnx"
        # the probabilities stay float: a uint8 softmax output would step by 1/255 and no longer sum to 1
        softmax = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Softmax"]
        quantize_static(str(prepared), str(quantized), _Windows(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=softmax)
        proto = onnx.load(str(quantized))
    del proto.metadata_props[:]
    for key, value in {**meta, ONNX_META_QUANTIZATION: INT8_QUANTIZATION}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(out, ".onnx") as tmp:
        onnx.save(proto, str(tmp))
    return out


def to_ort(model: Path, out: Path) -> Path:
    """``model`` in ORT format at ``out`` (what onnxruntime's mobile and minimal builds load)."""
    import onnxruntime as ort

    with atomic_path(out, ".ort") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(tmp)
        so.add_session_config_entry("session.save_model_format", "ORT")
        ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return out
