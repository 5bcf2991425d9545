"""`dvc repro` on a clone runs fetch → … → register to a champion; a second run does nothing;
`dvc exp run -S train.lr=…` re-runs from train with the new value, registers its model and leaves
the champion where it was; `dvc repro tune/dvc.yaml` (never a plain `dvc repro`) runs the search."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")]


def test_dvc_repro_to_champion(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"]["subjects"] = [1, 2, 3, 4, 5]
    params["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    params["train"].update(epochs=2, cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1})
    params["registry"]["min_macro_f1"] = 0.05  # 2 epochs on 2 subjects: the gate floor is for real runs
    params["export"]["latency_runs"] = 20
    params["tune"].update(model="classic", sampler="random", n_trials=2, workers=1,
                          space={"classic": {"train.classic.max_iter": {"choices": [10, 20]}}})
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(["git", "commit", "-qam", "small run"], cwd=clone, check=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # the project's own SQLite store
        env.pop(key, None)
    dvc = str(Path(sys.executable).parent / "dvc")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([dvc, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
        return res

    first = run("repro")
    for stage in ("preprocess", "train", "evaluate", "export", "register"):
        assert f"Running stage '{stage}'" in first.stdout
    registry = json.loads((clone / "reports" / "registry.json").read_text())
    assert registry["promotion"]["promoted"], registry
    assert "tune" not in first.stdout and not (clone / "reports" / "tune").exists()  # only when asked

    # the champion loads by alias from the project's SQLite store
    check = ("import mlflow, onnxruntime as ort, pathlib;"
             "mlflow.set_tracking_uri('sqlite:///mlflow.db');"
             "d = pathlib.Path(mlflow.artifacts.download_artifacts('models:/har-activity@champion'));"
             "s = ort.InferenceSession(str(next(d.rglob('*.onnx'))));"
             "print(s.get_inputs()[0].name, s.get_outputs()[0].shape[1])")
    res = subprocess.run([sys.executable, "-c", check], cwd=clone, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:] + first.stdout
    assert res.stdout.split() == ["window", "12"]
    metrics = json.loads((clone / "reports" / "evaluation" / "metrics.json").read_text())
    assert 0 <= metrics["macro_f1"] <= 1

    second = run("repro")
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout

    exp = run("exp", "run", "-S", "train.lr=0.001")
    assert "Running stage 'train'" in exp.stdout
    assert "Running stage 'preprocess'" not in exp.stdout
    shown = run("exp", "show", "--json")
    assert "0.001" in shown.stdout
    # the experiment's model is version 2 with the gate's verdict as a dry run; v1 is still served
    check = ("import json, mlflow;"
             "c = mlflow.MlflowClient('sqlite:///mlflow.db', 'sqlite:///mlflow.db');"
             "v = c.get_model_version('har-activity', '2');"
             "print(json.dumps([str(c.get_model_version_by_alias('har-activity', 'champion').version),"
             " v.tags['promotion.decision'], v.tags['promotion.policy']]))")
    res = subprocess.run([sys.executable, "-c", check], cwd=clone, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:] + exp.stdout
    champion, decision, policy = json.loads(res.stdout.strip().splitlines()[-1])
    assert champion == "1" and policy == "initial"
    assert decision in ("dry-run: would promote", "dry-run: would reject")
    registry = json.loads((clone / "reports" / "registry.json").read_text())
    assert registry["promotion"]["dry_run"] and not registry["promotion"]["promoted"]

    # tuning is a DVC stage of its own pipeline file: it runs when asked for, and then it is in sync
    tuned = run("repro", "tune/dvc.yaml")
    assert "Running stage 'tune/dvc.yaml:tune'" in tuned.stdout
    best = yaml.safe_load((clone / "reports" / "tune" / "best_params.yaml").read_text())
    assert best["train.classic.max_iter"] in (10, 20)
    assert "Data and pipelines are up to date" in run("status", "tune/dvc.yaml").stdout

    # the default (local) remote: created on the first push, and a pull restores every cached output
    remote = (clone / ".dvc" / "../../har-dvc-remote").resolve()
    assert not remote.exists()
    pushed = run("push")
    assert remote.is_dir() and "pushed" in pushed.stdout
    shutil.rmtree(clone / ".dvc" / "cache")
    for out in ("data/raw", "data/interim", "data/processed/windows.npz", "models"):
        path = clone / out
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run("pull")
    assert "Data and pipelines are up to date" in run("status").stdout
