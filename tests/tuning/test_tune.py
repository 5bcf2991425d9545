"""`har tune` on real HAPT windows (subjects 1-8): a study in SQLite, nested MLflow runs under the
study's parent run, best_params.yaml in params.yaml's dotted form, plots; the test subjects are never
read; a diverging trial fails and the study goes on; a killed `har tune` resumes its study."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from project_support import write_project_params

from har.config import Params, load_params
from har.contracts import WINDOWS_FILE
from har.stages.tune import tune

SPACE = {"train.lr": {"low": 0.001, "high": 0.01, "log": True},
         "train.batch_size": {"choices": [64, 128]},
         "train.cnn1d.dropout": {"low": 0.0, "high": 0.3, "step": 0.1}}


def _tune_settings(root: Path, **extra: Any) -> dict[str, Any]:
    return {"model": "cnn1d", "sampler": "random", "pruner": "none", "n_trials": 3, "epochs": 2,
            "storage": f"sqlite:///{root / 'optuna.db'}", "workers": 1, "out_dir": str(root / "reports/tune"),
            "timeout_s": 600, "space": {"cnn1d": SPACE}} | extra


def _poison_test_subjects(p: Params, root: Path) -> None:
    """A copy of the windows whose test subjects are NaN: a trial that read them would diverge."""
    src = p.preprocess.out_dir
    dst = root / "poisoned"
    shutil.copytree(src, dst)
    with np.load(src / WINDOWS_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    test = json.loads((src / "splits.json").read_text())["test"]
    arrays["X"] = arrays["X"].copy()
    arrays["X"][np.isin(arrays["subject"], test)] = np.nan
    np.savez(dst / WINDOWS_FILE, **arrays)
    p.preprocess.out_dir = dst


def _runs(p: Params) -> list[Any]:
    from mlflow import MlflowClient

    from har.tracking import tracking_uri

    c = MlflowClient(tracking_uri(p))
    exp = c.get_experiment_by_name(p.tracking.experiment)
    return c.search_runs([exp.experiment_id], max_results=100)


def test_tune_runs_a_study_with_nested_runs_on_validation_subjects(project: Params, tmp_path: Path) -> None:
    import optuna

    p = project
    p.tune = p.tune.model_validate(_tune_settings(tmp_path))
    _poison_test_subjects(p, tmp_path)
    out = tune(p)

    assert out["trials"]["complete"] == 3 and out["trials"]["fail"] == 0
    assert np.isfinite(out["best_value"]) and 0.2 < out["best_value"] <= 1.0  # never NaN: no test window read
    best = yaml.safe_load(Path(out["paths"]["best_params"]).read_text())
    assert set(best) == set(SPACE) and best["train.batch_size"] in (64, 128)
    assert "har train --set-file" in Path(out["paths"]["best_params"]).read_text()
    for name in ("optimization_history", "param_importances", "parallel_coordinate"):
        assert Path(out["paths"][name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    study = optuna.load_study(study_name=out["study"], storage=p.tune.storage)
    assert len(study.trials) == 3 and study.best_value == out["best_value"]

    runs = {r.info.run_id: r for r in _runs(p)}
    parent = runs[out["parent_run_id"]]
    assert parent.data.tags["optuna.study"] == out["study"] and parent.info.status == "FINISHED"
    assert parent.data.metrics["best_val_macro_f1"] == pytest.approx(out["best_value"])
    assert {f"best.{k}" for k in SPACE} <= set(parent.data.tags)
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    lrs = {t.params["train.lr"] for t in study.trials}
    assert {float(c.data.params["train.lr"]) for c in children} == lrs
    from mlflow import MlflowClient

    client = MlflowClient(p.tracking.uri if "://" in p.tracking.uri else None)
    history = client.get_metric_history(children[0].info.run_id, "val_macro_f1")
    assert [m.step for m in history] == [1, 2]  # one point per epoch: what the pruner judges
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in ("optimization_history", "param_importances",
                                                 "parallel_coordinate")}

    again = tune(p)  # the same setup resumes its own study: the budget is already used
    assert again["study"] == out["study"] and again["parent_run_id"] == out["parent_run_id"]
    assert len(optuna.load_study(study_name=out["study"], storage=p.tune.storage).trials) == 3


def test_a_diverging_trial_fails_and_the_study_goes_on(project: Params, tmp_path: Path) -> None:
    p = project
    # augmentation noise of 1e38 channel-stds overflows float32: that trial's loss becomes NaN
    p.train.augment.p = 1.0
    space = {"train.augment.jitter_sigma": {"choices": [0.0, 1.0e38]}}
    settings = _tune_settings(tmp_path, sampler="grid", n_trials=2, space={"cnn1d": space})
    p.tune = p.tune.model_validate(settings)
    out = tune(p)
    assert out["trials"] == {"complete": 1, "pruned": 0, "fail": 1, "running": 0}
    assert out["best_params"] == {"train.augment.jitter_sigma": 0.0}
    children = [r for r in _runs(p) if r.data.tags.get("mlflow.parentRunId") == out["parent_run_id"]]
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]


@pytest.mark.integration
def test_a_killed_har_tune_resumes_its_study(processed_root: Path, tmp_path: Path) -> None:
    import optuna

    params = write_project_params(tmp_path, preprocess={"out_dir": str(processed_root / "data/processed")},
                                  tune=_tune_settings(tmp_path, n_trials=4, epochs=3))
    p = load_params(params)
    storage = p.tune.storage
    cmd = [sys.executable, "-m", "har.cli", "tune", "-p", str(params)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    complete: list[Any] = []
    while time.monotonic() < deadline and not complete:
        time.sleep(1)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            (summary,) = optuna.get_all_study_summaries(storage)
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        except (ValueError, KeyError):
            continue  # the study is not created yet
    assert complete, "no trial finished within 300 s"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first = complete[0]

    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (summary,) = optuna.get_all_study_summaries(storage)  # one study: resumed, not started anew
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    kept = study.trials[first.number]
    assert kept.state.name == "COMPLETE" and kept.value == first.value and kept.params == first.params
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") + states.count("FAIL") == 4
    # the trial the kill interrupted stays RUNNING until its heartbeat grace has passed, then FAIL
    assert set(states) <= {"COMPLETE", "PRUNED", "FAIL", "RUNNING"} and states.count("RUNNING") <= 1
    assert f"study {summary.study_name}:" in res.stdout
