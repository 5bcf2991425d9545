"""Own recordings as a first-class source: a chest-worn, accelerometer-only data set of our own (7
activities of its own naming, m/s², millisecond timestamps) goes through `dvc repro` in a clone
with `data.source: own` to a promoted champion, whose ONNX needs only the acc channels; `har
serve` and `har predict` then answer for it, and refuse what does not fit (a missing channel, a
wrong unit)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from own_support import ACTIVITIES, activity_signal, session_frame, write_dataset

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ACC = ["acc_x", "acc_y", "acc_z"]
pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "HAR_DATA_MIRROR"):  # nothing of HAPT's
        env.pop(key, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_own_accelerometer_recordings_to_a_served_champion(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    env = _env()
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    write_dataset(clone / "data" / "own")  # 6 subjects × 2 sessions, not in git: DVC versions them
    params = yaml.safe_load((clone / "params.yaml").read_text())
    # the places a new user edits: where the data is and how it is written, its classes (and that it
    # has no postural-transition classes), its test subjects; then a model small enough for a test
    params["data"].update(source="own", acc_unit="m/s2", time_unit="ms")
    params["preprocess"].update(classes=ACTIVITIES, transitions={})
    params["split"].update(test_subjects=[5, 6], n_val_subjects=1, cv_folds=3)
    params["train"].update(epochs=10, min_epochs=5, patience=5,
                           cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1})
    # a chest strap is always worn the same way round: posture is where gravity points, which
    # random 3-D rotations would hide
    params["train"]["augment"]["rotation"] = False
    params["export"]["latency_runs"] = 20
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "own recordings"], cwd=clone, check=True, env=env)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(list(args), cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert (res.returncode == 0) == ok, res.stdout[-4000:] + res.stderr[-4000:]
        return res

    first = run(str(BIN / "dvc"), "repro")
    for stage in ("fetch", "ingest", "validate", "preprocess", "validate_windows", "train", "evaluate",
                  "export", "register"):
        assert f"Running stage '{stage}'" in first.stdout
    assert "verified snapshot of data/own at data/raw/own" in first.stdout
    assert sorted(p.relative_to(clone / "data/raw/own").as_posix()
                  for p in (clone / "data/raw/own").rglob("*.csv"))[:2] == [
        "subject01/session1.csv", "subject01/session2.csv"]
    registry = json.loads((clone / "reports" / "registry.json").read_text())
    assert registry["promotion"]["promoted"], registry  # the real gate: macro-F1 ≥ 0.6 and more
    metrics = json.loads((clone / "reports" / "evaluation" / "metrics.json").read_text())
    assert metrics["test_subjects"] == [5, 6] and metrics["macro_f1"] >= 0.9, metrics
    stats = json.loads((clone / "data" / "processed" / "stats.json").read_text())
    assert stats["channels"] == ACC and set(stats["windows_per_class"]) == set(ACTIVITIES)

    # the exported ONNX (registered as the champion; `har serve` shows the served one below):
    # three input channels, named in its contract, and our 7 classes
    model = onnx.load(str(clone / "models" / "model.onnx"), load_external_data=False)
    meta = {e.key: e.value for e in model.metadata_props}
    assert json.loads(meta["har.channels"]) == ACC and json.loads(meta["har.classes"]) == ACTIVITIES
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 3

    # nothing changed: nothing runs; a new recording: fetch and ingest are due again
    second = run(str(BIN / "dvc"), "repro")
    assert "Running stage" not in second.stdout and "Data and pipelines are up to date" in second.stdout
    session_frame(7, 1, seed=1).to_csv(clone / "data" / "own" / "subject07.csv", index=False)
    status = run(str(BIN / "dvc"), "status", "fetch")
    assert "data/own" in status.stdout and "modified" in status.stdout
    (clone / "data" / "own" / "subject07.csv").unlink()

    # `har predict` on a new recording, written like the training data (units from params.yaml)
    new = tmp_path / "subject08.csv"
    session_frame(8, 1, seed=2).to_csv(new, index=False)
    out = run(str(BIN / "har"), "predict", str(new), "--out", str(tmp_path / "timeline.csv"))
    assert "agreement with labels" in out.stdout
    agreement = float(out.stdout.split("agreement with labels ")[1].split("%")[0])
    assert agreement > 80, out.stdout
    bad = run(str(BIN / "har"), "predict", str(new), "--acc-unit", "g", "--out", str(tmp_path / "x.csv"),
              ok=False)
    assert "the values look like m/s2; set data.acc_unit: m/s2" in bad.stderr, bad.stderr

    # `har serve`: acc-only windows in, one of our classes out; a missing channel is named
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(BIN / "har"), "serve", "--port", str(port)], cwd=clone, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _http(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        status_code, info = _http(f"{base}/v1/model")
        assert status_code == 200 and info["channels"] == ACC and info["classes"] == ACTIVITIES
        n = info["window"]["window_len"]
        t = np.arange(n) / info["window"]["rate_hz"]
        window = activity_signal("walking", t, np.random.default_rng(5)).round(4).tolist()
        status_code, body = _http(f"{base}/v1/predict", {"channels": ACC, "windows": [window]})
        assert status_code == 200, body
        assert body["predictions"][0]["activity"] == "walking", body
        status_code, body = _http(f"{base}/v1/predict", {"channels": ACC[:2],
                                                         "windows": [[row[:2] for row in window]]})
        assert status_code == 422 and "missing required ['acc_z']" in body["detail"], body
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
