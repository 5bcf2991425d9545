"""Hot reload from a real SQLite MLflow registry: moving the champion alias swaps the model."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import mlflow  # noqa: F401 - a broken install fails the suite, never skips it
import numpy as np
import pytest
from serving_support import ADMIN

NAME = "har-activity"


@pytest.fixture(scope="module")
def _registry(tmp_path_factory: pytest.TempPathFactory, random_onnx: Path, random_onnx_b: Path):
    """Two versions of har-activity (different weights), each with test metrics on its run."""
    import mlflow.onnx
    import onnx
    from mlflow.tracking import MlflowClient

    tmp_path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("serving-test", artifact_location=(tmp_path / "artifacts").as_uri())
    for i, path in enumerate((random_onnx, random_onnx_b), start=1):
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_metrics({"test_macro_f1": 0.5 + i / 10, "test_accuracy": 0.6 + i / 10})
            info = mlflow.onnx.log_model(onnx.load(str(path)), name="model", pip_requirements=["onnxruntime"])
        mlflow.register_model(info.model_uri, NAME)
    yield MlflowClient(tracking_uri=uri, registry_uri=uri), uri
    mp.undo()


@pytest.fixture
def registry(_registry):
    """The module's registry with champion reset to version 1 (tests move it)."""
    _registry[0].set_registered_model_alias(NAME, "champion", "1")
    return _registry


def _probs(url: str) -> np.ndarray:
    x = np.random.default_rng(3).normal(size=(2, 128, 6)).tolist()
    r = httpx.post(f"{url}/v1/predict", json={"channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y",
                                                         "gyro_z"], "windows": x, "return_probs": True})
    return np.array([p["probs"] for p in r.json()["predictions"]])


def test_alias_move_picked_up_by_admin_reload_and_poll(live_server, registry) -> None:
    client, uri = registry
    srv = live_server(f"models:/{NAME}@champion", reload_interval_s=600)  # poll effectively off
    info = httpx.get(f"{srv.url}/v1/model").json()
    assert info["name"] == NAME and info["version"] == "1"
    assert info["metrics"] == pytest.approx({"test_macro_f1": 0.6, "test_accuracy": 0.7})
    before = _probs(srv.url)
    # Unchanged alias: reload is a no-op.
    assert httpx.post(f"{srv.url}/v1/admin/reload", headers=ADMIN).json() == {
        "reloaded": False, "version": "1", "error": None}
    client.set_registered_model_alias(NAME, "champion", "2")
    r = httpx.post(f"{srv.url}/v1/admin/reload", headers=ADMIN).json()
    assert r == {"reloaded": True, "version": "2", "error": None}
    info = httpx.get(f"{srv.url}/v1/model").json()
    assert info["version"] == "2" and info["metrics"]["test_macro_f1"] == pytest.approx(0.7)
    assert not np.allclose(_probs(srv.url), before)  # really the other weights

    # Background poll with a short interval, no admin call.
    polled = live_server(f"models:/{NAME}@champion", reload_interval_s=0.2)
    assert httpx.get(f"{polled.url}/v1/model").json()["version"] == "2"
    client.set_registered_model_alias(NAME, "champion", "1")
    deadline = time.monotonic() + 15
    while httpx.get(f"{polled.url}/v1/model").json()["version"] != "1":
        assert time.monotonic() < deadline, "poll did not pick up the alias move"
        time.sleep(0.1)
    np.testing.assert_allclose(_probs(polled.url), before, atol=1e-6)


def test_broken_alias_keeps_serving_old_model(live_server, registry) -> None:
    client, _ = registry
    srv = live_server(f"models:/{NAME}@champion", reload_interval_s=600)
    client.delete_registered_model_alias(NAME, "champion")
    r = httpx.post(f"{srv.url}/v1/admin/reload", headers=ADMIN).json()
    assert r["reloaded"] is False and r["version"] == "1" and "champion" in r["error"]
    assert httpx.get(f"{srv.url}/readyz").status_code == 200


def test_unknown_alias_is_not_ready(live_server, registry) -> None:
    srv = live_server(f"models:/{NAME}@nope", ready=False)
    deadline = time.monotonic() + 15
    while (r := httpx.get(f"{srv.url}/readyz")).status_code == 503 and "loading" in r.text:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert r.status_code == 503 and "nope" in r.json()["detail"]
