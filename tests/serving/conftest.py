"""Serving fixtures: tiny ONNX models in the export contract, HAPT data, a live uvicorn server."""

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

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("torch")

from serving_support import CHANNELS, CLASSES, REPO, LiveServer  # noqa: E402


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server(model_uri, **serve_overrides)`` → a started, ready LiveServer."""
    from har.config import ServeParams
    from har.serving.app import create_app

    started: list[LiveServer] = []

    def start(model_uri: str, ready: bool = True, tracking_uri: str | None = None,
              **overrides: object) -> LiveServer:
        serve = ServeParams(model_uri=model_uri, inference_log_dir=tmp_path / "inference_log",
                            **overrides)
        srv = LiveServer(create_app(serve, tracking_uri=tracking_uri)).__enter__()
        started.append(srv)
        if ready:
            srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.__exit__(None, None, None)


def _export(tmp: Path, name: str, model) -> Path:  # noqa: ANN001
    from har.serving.fixture_model import export_onnx

    return export_onnx(model, tmp / name, CLASSES, CHANNELS, model_type="tiny-fixture")


@pytest.fixture(scope="session")
def random_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained but deterministic (seed 0): for API mechanics that need no real data."""
    from har.serving.fixture_model import build_tiny_model

    mean = np.array([0.8, 0.0, 0.1, 0, 0, 0], np.float32)
    std = np.array([0.3, 0.3, 0.3, 0.5, 0.5, 0.5], np.float32)
    return _export(tmp_path_factory.mktemp("onnx"), "random0.onnx",
                   build_tiny_model(len(CHANNELS), len(CLASSES), mean, std, seed=0))


@pytest.fixture(scope="session")
def random_onnx_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different model (seed 1) for reload tests."""
    from har.serving.fixture_model import build_tiny_model

    return _export(tmp_path_factory.mktemp("onnx"), "random1.onnx",
                   build_tiny_model(len(CHANNELS), len(CLASSES), seed=1))


@pytest.fixture(scope="session")
def hapt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """windows.npz, splits.json and recordings.parquet: the repo's, or built from the mirror."""
    processed, interim = REPO / "data" / "processed", REPO / "data" / "interim" / "recordings.parquet"
    if (processed / "windows.npz").is_file() and (processed / "splits.json").is_file() \
            and interim.is_file():
        return {"windows": processed / "windows.npz", "splits": processed / "splits.json",
                "recordings": interim}
    mirror = os.environ.get("HAR_DATA_MIRROR")
    if not mirror:
        pytest.skip("needs data/processed/windows.npz + data/interim/recordings.parquet "
                    "(run `har run`) or HAR_DATA_MIRROR to build them")
    root = tmp_path_factory.mktemp("hapt_project")
    shutil.copytree(REPO / "great_expectations", root / "great_expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["subjects"] = [1, 2, 3, 4, 5, 6]
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
    """The tiny model fitted for a few seconds on the training subjects' windows."""
    from har.preprocess.windows import load_windows
    from har.serving.fixture_model import train_tiny_model

    w = load_windows(hapt["windows"])
    assert w.channels[:6] == CHANNELS
    train = np.isin(w.subject, json.loads(hapt["splits"].read_text())["train"])
    model = train_tiny_model(w.X[train][:, :, :6], w.y[train], len(CLASSES), steps=150, hidden=16)
    return _export(tmp_path_factory.mktemp("onnx"), "trained.onnx", model)
