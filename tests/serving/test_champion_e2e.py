"""End to end: train → evaluate → export → register → promote a small cnn1d into a SQLite MLflow,
then `har serve` as a real subprocess serves ``models:/har-activity@champion`` and predicts exactly
like offline onnxruntime on the exported ``models/model.onnx``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow  # noqa: F401 - a broken install fails the suite, never skips it
import numpy as np
import onnxruntime as ort
import pytest
from serving_support import CHANNELS, CLASSES, REPO, free_port


def _write_project_params(root: Path, **sections: dict) -> Path:
    """tests/project_support.py's ``write_project_params`` (loaded by file: the test folders are not
    packages)."""
    spec = importlib.util.spec_from_file_location("_har_project_support", REPO / "tests/project_support.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_project_params(root, **sections)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"har serve exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"har serve not ready after {timeout:.0f} s")


@pytest.fixture
def champion_project(hapt: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose SQLite registry holds a promoted champion (version 1)."""
    from har import stages
    from har.config import load_params

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = _write_project_params(
        tmp_path,
        preprocess={"out_dir": str(hapt["windows"].parent)},  # read-only from here on
        data={"interim_path": str(hapt["recordings"])},
        train={"epochs": 2, "min_epochs": 1, "num_threads": 1},
        export={"latency_runs": 20},
        registry={"min_macro_f1": 0.1},  # 2 epochs of a small cnn1d: the floor is for real training
    )
    p = load_params(path)
    stages.model.train(p, show_progress=False)
    stages.model.evaluate(p)
    stages.model.export(p)
    promoted = stages.registry.register(p)["promotion"]  # registry.promotion_policy initial: first champion
    assert promoted["promoted"] and promoted["version"] == "1", promoted
    return tmp_path


def test_har_serve_serves_the_promoted_champion(champion_project: Path, hapt: dict[str, Path]) -> None:
    from har.preprocess.windows import load_windows

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "har.cli", "serve", "--params", str(champion_project / "params.yaml"),
           "--port", str(port), "--model-uri", "models:/har-activity@champion"]
    log = (champion_project / "serve.log").open("w")
    proc = subprocess.Popen(cmd, cwd=champion_project, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, proc)
        info = httpx.get(f"{url}/v1/model").json()
        assert info["name"] == "har-activity" and info["version"] == "1"
        assert info["classes"] == CLASSES and info["channels"] == CHANNELS
        assert info["metrics"]["test_macro_f1"] > 0.1
        # the version's model card, written at registration, as the registry holds it
        card = httpx.get(f"{url}/v1/model/card")
        assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
        assert card.text.startswith("# Model card: har-activity v1 (cnn1d)")
        for section in ("## Data", "## Evaluation protocol", "## Per-class F1 (test subjects)",
                        "## Intended use", "## Limits", "## Promotion gate", "## Dataset licence"):
            assert section in card.text, section
        assert "**promoted to champion** (policy `initial`" in card.text
        assert "forbids commercial use" in card.text and "test [2, 4]" in card.text

        w = load_windows(hapt["windows"])
        test = np.isin(w.subject, json.loads(hapt["splits"].read_text())["test"])
        x = w.X[test][::7][:300, :, :6].astype(np.float32)
        r = httpx.post(f"{url}/v1/predict", json={"channels": CHANNELS, "windows": x.tolist(),
                                                  "return_probs": True}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == {"name": "har-activity", "version": "1"}
        got = np.array([p["probs"] for p in body["predictions"]])
        onnx_file = champion_project / "models" / "model.onnx"
        expected = ort.InferenceSession(str(onnx_file)).run(["probs"], {"window": x})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert [p["class_id"] for p in body["predictions"]] == expected.argmax(1).tolist()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    assert proc.returncode is not None
