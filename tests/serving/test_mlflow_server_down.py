"""A real `mlflow server` as the model source: when it goes down the API keeps serving the loaded
champion and /readyz says so; credentials in the tracking URI never reach a response."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_support import ADMIN, CHANNELS, free_port

NAME = "har-activity"
WINDOW = [[0.1] * 6] * 128


@pytest.fixture
def mlflow_server(tmp_path: Path, random_onnx: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow server` (SQLite backend, proxied artifacts) holding har-activity v1 @champion."""
    import mlflow.onnx
    import onnx
    from mlflow.tracking import MlflowClient

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "mlflow.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db",
         "--serve-artifacts", "--artifacts-destination", (tmp_path / "artifacts").as_uri()],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false"})
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "mlflow.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        exp = client.create_experiment("down-test")
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_metrics({"test_macro_f1": 0.7})
            info = mlflow.onnx.log_model(onnx.load(str(random_onnx)), name="model",
                                         pip_requirements=["onnxruntime"])
        mv = mlflow.register_model(info.model_uri, NAME)
        client.set_registered_model_alias(NAME, "champion", mv.version)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_api_keeps_serving_when_mlflow_server_goes_down(live_server, mlflow_server) -> None:
    url, proc = mlflow_server
    srv = live_server(f"models:/{NAME}@champion", tracking_uri=url, reload_interval_s=600)
    assert httpx.get(f"{srv.url}/readyz").json() == {"status": "ready", "version": "1", "source": "ok"}
    os.killpg(proc.pid, signal.SIGKILL)  # the tracking server dies
    proc.wait(10)
    r = httpx.post(f"{srv.url}/v1/admin/reload", timeout=120, headers=ADMIN).json()
    assert r["reloaded"] is False and r["version"] == "1" and "not resolvable" in r["error"]
    ready = httpx.get(f"{srv.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["version"] == "1" and body["source"].startswith("unreachable, serving the loaded model")
    pred = httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": [WINDOW]})
    assert pred.status_code == 200 and pred.json()["model"]["version"] == "1"


def test_credentials_in_tracking_uri_are_redacted(live_server) -> None:
    dead = f"http://alice:hunter2-secret@127.0.0.1:{free_port()}"
    srv = live_server(f"models:/{NAME}@champion", tracking_uri=dead, ready=False)
    deadline = time.monotonic() + 120
    while (r := httpx.get(f"{srv.url}/readyz")).status_code == 503 and "loading" in r.text:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    texts = [r.text, httpx.post(f"{srv.url}/v1/admin/reload", timeout=120, headers=ADMIN).text,
             httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": [WINDOW]}).text]
    assert r.status_code == 503 and "alice:***@" in r.text
    for text in texts:
        assert "hunter2" not in text, text
