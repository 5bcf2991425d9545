"""Serving fixtures: small cnn1d models built, trained and exported by the project's own code
(har.models, har.training, har.export), HAPT data, a live uvicorn server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Plain imports, no importorskip: a broken install must fail the suite, not skip it.
import fastapi  # noqa: F401
import onnxruntime  # noqa: F401
import torch
import uvicorn  # noqa: F401
from serving_support import ADMIN_TOKEN, CHANNELS, CLASSES, REPO, LiveServer


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server(model_uri, **serve_overrides)`` → a started, ready LiveServer
    (admin routes enabled with serving_support.ADMIN_TOKEN unless ``admin_token=None``)."""
    from har.config import ServeParams
    from har.serving.app import create_app

    started: list[LiveServer] = []

    def start(model_uri: str, ready: bool = True, tracking_uri: str | None = None,
              admin_token: str | None = ADMIN_TOKEN, **overrides: object) -> LiveServer:
        serve = ServeParams(model_uri=model_uri, inference_log_dir=tmp_path / "inference_log",
                            **overrides)
        srv = LiveServer(create_app(serve, tracking_uri=tracking_uri, admin_token=admin_token)).__enter__()
        started.append(srv)
        if ready:
            srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.__exit__(None, None, None)


# The smallest sensible cnn1d: the serving tests exercise the contract, not the model's accuracy.
TRAINED_EPOCHS = 10
SMALL_CNN = {"channels": [16, 32], "kernel_size": 5, "dropout": 0.1}


def _small_params(**overrides: object):
    from har.config import TrainParams

    return TrainParams(model="cnn1d", cnn1d=SMALL_CNN, **overrides)


def _meta(tp, channels: list[str] | None = None):
    from har.training.bundle import ModelMeta

    return ModelMeta(model="cnn1d", classes=CLASSES, channels=channels or CHANNELS, rate_hz=50.0,
                     window_len=128, window_s=2.56, overlap=0.5, train_params=tp.model_dump(mode="json"))


def _random_onnx(path: Path, seed: int, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None) -> Path:
    """An untrained (seeded) cnn1d through the real exporter: the production contract exactly."""

    from har.export.onnx import export_onnx
    from har.models import build_model
    from har.training.bundle import TrainedModel

    tp = _small_params(seed=seed)
    torch.manual_seed(seed)
    net = build_model("cnn1d", tp, len(CHANNELS), len(CLASSES))
    if mean is not None and std is not None:
        net.standardize.set(mean, std)
    return export_onnx(TrainedModel(_meta(tp), net=net.eval()), path)


@pytest.fixture(scope="session")
def random_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained but deterministic (seed 0): for API mechanics that need no real data."""
    mean = np.array([0.8, 0.0, 0.1, 0, 0, 0], np.float32)
    std = np.array([0.3, 0.3, 0.3, 0.5, 0.5, 0.5], np.float32)
    return _random_onnx(tmp_path_factory.mktemp("onnx") / "random0.onnx", 0, mean, std)


@pytest.fixture(scope="session")
def random_onnx_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different model (seed 1) for reload tests."""
    return _random_onnx(tmp_path_factory.mktemp("onnx") / "random1.onnx", 1)


@pytest.fixture(scope="session")
def hapt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """windows.npz, splits.json and recordings.parquet of HAPT subjects 1-10, always built from the
    mirror (never the repo's data/, so a local run tests exactly what CI tests)."""
    mirror = os.environ.get("HAR_DATA_MIRROR")
    if not mirror:
        pytest.skip("HAR_DATA_MIRROR not set: the serving tests use real HAPT recordings")
    root = tmp_path_factory.mktemp("hapt_project")
    shutil.copytree(REPO / "great_expectations", root / "great_expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["subjects"] = list(range(1, 11))
    raw["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    for cmd in (["data", "fetch"], ["data", "ingest"], ["preprocess"]):
        res = subprocess.run([sys.executable, "-m", "har.cli", *cmd], cwd=root, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
    return {"windows": root / "data/processed/windows.npz", "splits": root / "data/processed/splits.json",
            "recordings": root / "data/interim/recordings.parquet"}


@pytest.fixture(scope="session")
def trained_onnx(hapt: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small cnn1d trained by the real loop (``fit_model``, seeded) for a few epochs on the
    training subjects' windows, then exported by the real exporter."""
    from har.export.onnx import export_onnx
    from har.preprocess.windows import load_windows
    from har.training.train import fit_model

    w = load_windows(hapt["windows"])
    assert w.channels[:6] == CHANNELS
    splits = json.loads(hapt["splits"].read_text())
    X = w.X[:, :, :6].astype(np.float32, copy=False)
    train, val = np.isin(w.subject, splits["train"]), np.isin(w.subject, splits["val"])
    tp = _small_params(epochs=TRAINED_EPOCHS, min_epochs=1, num_threads=1)
    model, _ = fit_model(tp, _meta(tp), X[train], w.y[train], X[val], w.y[val], show_progress=False)
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "trained.onnx")
