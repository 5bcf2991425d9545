"""`har evaluate --cv` as a Prefect flow on a real external Dask cluster (a `dask scheduler` and two
`dask worker` processes on loopback): the same per-fold table as the serial run, and a worker killed
mid-fold costs a retry on the surviving worker, not a fold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dask_support import DaskCluster
from project_support import write_project_params

MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set"),
    pytest.mark.usefixtures("prefect_api"),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    c = DaskCluster(tmp_path).start()
    try:
        yield c
    finally:
        c.stop()


def _params(root: Path, processed_root: Path, **evaluate: Any) -> Path:
    return write_project_params(
        root,
        data={"interim_path": str(processed_root / "data/interim/recordings.parquet")},
        preprocess={"out_dir": str(processed_root / "data/processed")},
        # one thread in both runs: a deep model's float sums then follow the same order
        train={"num_threads": 1, "classic": {"estimator": "hgb", "max_iter": 40}},
        evaluate={"cv_folds": 3, "cv_epochs": 2, "cv_models": ["classic", "cnn1d"], **evaluate})


def test_cv_flow_on_an_external_cluster_equals_the_serial_run(
        processed_root: Path, tmp_path: Path, cluster: DaskCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.cv import run_cv
    from har.config import load_params
    from har.stages.model import evaluate_cv

    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, processed_root)
    out = run_cv(str(params), overrides={"pipeline.dask_address": cluster.address,
                                         "evaluate.cv_out_dir": str(tmp_path / "dask")})
    serial = evaluate_cv(load_params(params, {"evaluate.cv_out_dir": str(tmp_path / "serial"),
                                              "evaluate.cv_workers": 1}), show_progress=False)
    on_dask = pd.read_csv(out["paths"]["folds"])
    in_turn = pd.read_csv(serial["paths"]["folds"])
    assert list(on_dask[["model", "fold"]].itertuples(index=False)) == [
        (m, k) for k in (1, 2, 3) for m in ("classic", "cnn1d")]  # the serial table's order
    cols = ["model", "fold", "test_subjects", "macro_f1", "accuracy", "n_test_windows", "n_params",
            "epochs_run", "best_epoch"]
    pd.testing.assert_frame_equal(on_dask[cols], in_turn[cols])  # exactly: folds are pure functions
    assert (tmp_path / "dask" / "cv_summary.md").read_text().startswith("| model | macro-F1")


def test_a_worker_killed_mid_fold_is_retried_on_the_survivor(
        processed_root: Path, tmp_path: Path, cluster: DaskCluster) -> None:
    from prefect.settings import PREFECT_API_URL

    params = _params(tmp_path, processed_root, cv_models=["classic"], cv_folds=4)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": ""}
    cmd = [sys.executable, "-m", "har.cli", "evaluate", "--cv", "-p", str(params), "--set",
           f"pipeline.dask_address={cluster.address}", "--set", "train.classic.max_iter=200"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    pids = cluster.worker_pids()
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        busy = [addr for addr, keys in cluster.processing().items() if keys]
        if len(busy) == len(pids):  # both workers are inside a fold: kill one of them
            victim = busy[0]
        time.sleep(0.2)
    assert victim is not None, "the folds never ran on both workers"
    os.kill(pids[victim], signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    folds = pd.read_csv(tmp_path / "reports/cv/cv_folds.csv")
    assert sorted(folds["fold"]) == [1, 2, 3, 4] and folds["macro_f1"].notna().all()
    survivors = set(cluster.worker_pids())
    assert survivors == set(pids) - {victim}  # the table was finished by the one worker left
