"""ONNX export: input ``window`` float32 [batch, T, C] raw (physical units), output ``probs``.

The contract (docs/models.md) is the same for every model kind, so serving never needs to know
which one it runs: deep models export through torch.onnx (dynamo) with softmax appended; the
classic model merges its torch feature graph with the skl2onnx trees.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

from har.contracts import ONNX_INPUT, ONNX_OUTPUT
from har.errors import DataError
from har.io import atomic_path
from har.training.bundle import TrainedModel

INPUT, OUTPUT = ONNX_INPUT, ONNX_OUTPUT


def _export_deep(model: TrainedModel, opset: int) -> onnx.ModelProto:
    import torch

    net = torch.nn.Sequential(model.net, torch.nn.Softmax(dim=-1)).eval()
    example = torch.zeros(2, model.meta.window_len, len(model.meta.channels))
    batch = torch.export.Dim("batch", min=1)
    # The exporter is chatty (warnings about torchvision, deprecations); none of it is actionable.
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as d:
        warnings.simplefilter("ignore")
        logging.getLogger("torch").setLevel(logging.ERROR)
        prog = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
                                 output_names=[OUTPUT], dynamic_shapes=({0: batch},), verbose=False)
        path = Path(d) / "model.onnx"
        prog.save(str(path))
        return onnx.load(str(path))


def export_onnx(model: TrainedModel, path: Path, *, opset: int = 18) -> Path:
    """Write ``model`` as one self-describing ONNX file (metadata_props carry the window spec)."""
    if model.is_deep:
        proto = _export_deep(model, opset)
    else:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d) / "classic.onnx"
            model.classic.to_onnx(tmp, opset=opset)
            proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    for key, value in model.meta.onnx_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "har"
    onnx.checker.check_model(proto)
    with atomic_path(path, ".onnx") as tmp:
        onnx.save(proto, str(tmp))
    return path


def session(path: Path, threads: int = 1):
    import onnxruntime as ort

    if not path.is_file():
        raise DataError(f"{path}: ONNX model not found; run `har export`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own non-exported exception types
        raise DataError(f"{path}: not a loadable ONNX model ({e})") from None


def read_metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def parity(model: TrainedModel, onnx_path: Path, X: np.ndarray) -> float:
    """Max abs difference of probabilities, ONNX Runtime vs the in-memory model, on ``X``."""
    sess = session(onnx_path, threads=2)
    ref = model.predict_proba(X)
    got = np.concatenate([sess.run([OUTPUT], {INPUT: X[i:i + 512]})[0] for i in range(0, len(X), 512)])
    return float(np.abs(got - ref).max()) if len(X) else 0.0


def latency_ms(onnx_path: Path, window: np.ndarray, runs: int = 200) -> dict[str, float]:
    """Batch-1 latency of ONNX Runtime (single thread, as one server worker runs it)."""
    sess = session(onnx_path, threads=1)
    x = window[None].astype(np.float32)
    for _ in range(min(20, runs)):
        sess.run([OUTPUT], {INPUT: x})
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        sess.run([OUTPUT], {INPUT: x})
        times[i] = time.perf_counter() - t
    return {"latency_p50_ms": float(np.percentile(times, 50) * 1e3),
            "latency_p99_ms": float(np.percentile(times, 99) * 1e3)}
