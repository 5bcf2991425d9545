"""`har tune` with tune.workers 2: the Prefect flow `tune` runs its trials on a Dask LocalCluster of two
worker processes, which share one study's budget through its SQLite storage; every trial is a nested
MLflow run under the study's parent run."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import yaml
from project_support import write_project_params

MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set"),
    pytest.mark.usefixtures("prefect_api"),
]


def test_tune_flow_runs_parallel_trials_of_one_study(processed_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from flows.tuning import tune_flow
    from har.config import load_params
    from har.tracking import tracking_uri

    monkeypatch.chdir(tmp_path)
    space = {"train.classic.learning_rate": {"low": 0.05, "high": 0.3, "log": True},
             "train.classic.max_iter": {"choices": [20, 40]}}
    params = write_project_params(
        tmp_path, preprocess={"out_dir": str(processed_root / "data/processed")},
        tune={"model": "classic", "sampler": "tpe", "n_trials": 6, "workers": 2, "timeout_s": 600,
              "storage": f"sqlite:///{tmp_path / 'optuna.db'}", "out_dir": str(tmp_path / "reports/tune"),
              "space": {"classic": space}})
    out = tune_flow(params_path=str(params))

    study = optuna.load_study(study_name=out["study"], storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    # the workers share the budget; each may finish the trial it had started when it was used up
    assert 6 <= len(finished) <= 7 and out["trials"]["complete"] == len(finished)
    best = yaml.safe_load((tmp_path / "reports/tune/best_params.yaml").read_text())
    assert best == study.best_params and set(best) == set(space)

    p = load_params(params)
    client = MlflowClient(tracking_uri(p))
    runs = client.search_runs([client.get_experiment_by_name(p.tracking.experiment).experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == out["parent_run_id"]]
    assert len(children) == len(finished)
    assert {r.data.tags["tune.worker"] for r in children} == {"0", "1"}  # both workers ran trials
    assert len({r.data.tags["optuna.trial"] for r in children}) == len(children)
