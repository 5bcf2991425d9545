"""A tiny deterministic model in the `har export` ONNX contract, for tests and benchmarks.

It stands in for the exported production model wherever one is not available: the same graph
input/output names (``window`` → ``probs``), raw physical-unit windows in (standardisation is
inside the graph) and the same ``har.*`` metadata_props. Requires torch, onnx and onnxscript.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def build_tiny_model(n_channels: int, n_classes: int, mean: np.ndarray | None = None,
                     std: np.ndarray | None = None, hidden: int = 16, seed: int = 0):  # noqa: ANN201
    """standardise → conv1d → ReLU → global average pool → linear → softmax (a torch Module)."""
    import torch
    from torch import nn

    class TinyHAR(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            m = np.zeros(n_channels, np.float32) if mean is None else mean.astype(np.float32)
            s = np.ones(n_channels, np.float32) if std is None else std.astype(np.float32)
            # Buffers, so the standardisation is exported into the graph with the weights.
            self.register_buffer("mean", torch.from_numpy(m).view(1, 1, -1))
            self.register_buffer("std", torch.from_numpy(np.maximum(s, 1e-6)).view(1, 1, -1))
            self.conv = nn.Conv1d(n_channels, hidden, kernel_size=5, padding=2)
            self.head = nn.Linear(hidden, n_classes)

        def logits(self, window: torch.Tensor) -> torch.Tensor:
            x = ((window - self.mean) / self.std).transpose(1, 2)  # (B, C, T)
            return self.head(torch.relu(self.conv(x)).mean(dim=2))

        def forward(self, window: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(window), dim=1)

    torch.manual_seed(seed)
    return TinyHAR().eval()


def train_tiny_model(X: np.ndarray, y: np.ndarray, n_classes: int, steps: int = 300,
                     max_seconds: float = 30.0, seed: int = 0, hidden: int = 16):  # noqa: ANN201
    """Fit the tiny model on raw windows: ``steps`` Adam steps of 256 windows (deterministic for a
    seed), stopping early after ``max_seconds`` so a slow machine cannot stall the tests."""
    import torch

    torch.manual_seed(seed)
    flat = X.reshape(-1, X.shape[2])
    model = build_tiny_model(X.shape[2], n_classes, flat.mean(0), flat.std(0), hidden, seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y.astype(np.int64))
    deadline = time.perf_counter() + max_seconds
    for _ in range(steps):
        if time.perf_counter() > deadline:
            break
        idx = torch.from_numpy(rng.integers(0, len(X), 256))
        loss = torch.nn.functional.cross_entropy(model.logits(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def export_onnx(model, path: Path, classes: list[str], channels: list[str],  # noqa: ANN001
                rate_hz: float = 50.0, window_len: int = 128, overlap: float = 0.5,
                model_type: str = "tiny-fixture") -> Path:
    """Export ``model`` in the serving contract (dynamic batch) and add the har.* metadata."""
    import onnx
    import torch

    x = torch.zeros(2, window_len, len(channels))
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the exporter's own deprecation chatter, not actionable here
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, (x,), str(path), input_names=["window"], output_names=["probs"],
                          dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    proto = onnx.load(str(path))
    meta = {"har.classes": json.dumps(classes), "har.channels": json.dumps(channels),
            "har.rate_hz": str(float(rate_hz)), "har.window_len": str(window_len),
            "har.window_s": str(round(window_len / rate_hz, 6)), "har.overlap": str(overlap),
            "har.model": model_type}
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    # One self-contained file: the exporter may have written weights as external data.
    onnx.save_model(proto, str(path), save_as_external_data=False)
    for extra in path.parent.glob(path.name + ".data"):
        extra.unlink()
    return path
