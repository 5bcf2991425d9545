"""Fault drill: `kill -9` of `dvc repro` (the whole process group: dvc and the stage it runs, as a
lost machine would) in the middle of the train stage, on a fresh clone; then `dvc repro` again.

The rerun must start at train (the stages that finished are recorded in dvc.lock), complete to a
champion, and leave DVC, the registry and the MLflow store without leftovers: `dvc status` clean,
one version holding both aliases, the killed process's MLflow run ended as KILLED.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from project_support import MIRROR, REPO

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")]
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
          "GIT_COMMITTER_EMAIL": "t@t"}


def test_kill_during_a_stage_then_repro_again(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"]["subjects"] = [1, 2, 3, 4, 5]
    params["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    params["train"].update(epochs=3, min_epochs=3,
                           cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1})
    params["registry"]["min_macro_f1"] = 0.05  # 3 epochs on 2 subjects: the floor is for real runs
    params["export"]["latency_runs"] = 20
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false", **GIT_ID}
    subprocess.run(["git", "commit", "-qam", "small run"], cwd=clone, check=True, env=env)
    dvc = str(Path(sys.executable).parent / "dvc")

    proc = subprocess.Popen([dvc, "repro"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    checkpoint = clone / "models/checkpoints/last.pt"
    deadline = time.monotonic() + 600
    while not checkpoint.exists():  # epoch 1 of 3 done: train is mid-stage
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "train never wrote its first checkpoint"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    killed = proc.communicate(timeout=60)[0]
    assert proc.returncode == -signal.SIGKILL
    assert not (clone / "models/trained").exists(), "killed too late: train had finished"
    assert "Running stage 'preprocess'" in killed and "Running stage 'evaluate'" not in killed

    res = subprocess.run([dvc, "repro"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    ran = [s for s in ("fetch", "ingest", "validate", "preprocess", "validate_windows", "train",
                       "evaluate", "export", "register") if f"Running stage '{s}'" in res.stdout]
    assert ran == ["train", "evaluate", "export", "register"], res.stdout  # finished stages kept

    # dvc.yaml: the pipeline; tune/dvc.yaml runs only when asked, so it is never up to date here
    status = subprocess.run([dvc, "status", "dvc.yaml"], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=300)
    assert status.returncode == 0 and "Data and pipelines are up to date" in status.stdout, status.stdout
    registry = json.loads((clone / "reports/registry.json").read_text())
    assert registry["version"] == "1" and registry["promotion"]["promoted"], registry
    with sqlite3.connect(f"file:{clone / 'mlflow.db'}?mode=ro", uri=True) as con:
        assert con.execute("SELECT version FROM model_versions").fetchall() == [(1,)]
        assert sorted(con.execute("SELECT alias, version FROM registered_model_aliases").fetchall()) == [
            ("challenger", 1), ("champion", 1)]
        runs = dict(con.execute("SELECT run_uuid, status FROM runs").fetchall())
    # the killed train's run is closed as KILLED by the fresh train, not left RUNNING forever
    assert sorted(runs.values()) == ["FINISHED", "KILLED"], runs
