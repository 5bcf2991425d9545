"""train → evaluate → export → register → promote on real HAPT subjects, into a SQLite MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import onnxruntime as ort
import pytest

from har import stages
from har.config import Params
from har.export.onnx import read_metadata
from har.training.data import load_split_data


def _pipeline(p: Params) -> dict:
    """train → evaluate → export → register (recording the verdict only) → an explicit promote."""
    stages.model.train(p, show_progress=False)
    stages.model.evaluate(p)
    stages.model.export(p)
    p.registry.promotion_policy = "dry-run"
    stages.registry.register(p)
    return stages.registry.promote(p)


def test_pipeline_to_champion_then_gate_and_rollback(project: Params) -> None:
    first = _pipeline(project)
    assert first["promoted"], first
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("har-activity", "champion")
    run = client.get_run(champion.run_id)
    # the run carries params, per-epoch metrics, final/test/export metrics, digest and commit
    assert run.data.params["train.model"] == "cnn1d"
    expected = {"val_macro_f1", "test_macro_f1", "parity_max_abs_diff", "latency_p50_ms"}
    assert expected <= run.data.metrics.keys()
    assert len(client.get_metric_history(run.info.run_id, "val_macro_f1")) == project.train.epochs
    assert len(run.data.tags["data_digest"]) == 64 and run.data.tags["git_commit"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion.png" in artifacts
    assert champion.tags["test_subjects"] == "[2, 4]"

    # the champion loads by alias and predicts like the exported file
    local = Path(mlflow.artifacts.download_artifacts("models:/har-activity@champion"))
    onnx_file = next(local.rglob("*.onnx"))
    meta = read_metadata(onnx_file)
    assert json.loads(meta["har.classes"]) == project.preprocess.classes
    assert meta["har.window_len"] == "128"
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    X, y = data.part("test")
    probs = ort.InferenceSession(str(onnx_file)).run(["probs"], {"window": X})[0]
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    evaluation = json.loads((project.evaluate.out_dir / "metrics.json").read_text())
    assert (probs.argmax(1) == y).mean() == pytest.approx(evaluation["accuracy"], abs=1e-3)
    assert (project.evaluate.out_dir / "confusion.png").stat().st_size > 10_000
    cm = np.loadtxt(project.evaluate.out_dir / "confusion.csv", delimiter=",", skiprows=1,
                    usecols=range(1, 13))
    assert cm.sum() == len(y)

    # a clearly worse model (one epoch, tiny lr) is registered but not promoted
    project.train.epochs, project.train.lr = 1, 1e-5
    second = _pipeline(project)
    assert not second["promoted"] and second["champion_before"] == first["version"]
    assert str(client.get_model_version_by_alias("har-activity", "champion").version) == first["version"]
    rejected = client.get_model_version("har-activity", second["version"])
    assert rejected.tags["promotion.decision"] == "rejected"
    registry = json.loads(project.registry.report_path.read_text())
    assert registry["promotion"]["promoted"] is False

    # promote the worse one explicitly? the gate refuses; rollback with one champion refuses too
    with pytest.raises(Exception, match="no previous champion"):
        stages.registry.rollback(project)


def test_classic_model_exports_and_registers(project: Params) -> None:
    project.train.model = "classic"
    project.train.classic = {"max_iter": 30}
    out = stages.model.train(project, show_progress=False)
    assert out["n_params"] > 0
    stages.model.evaluate(project)
    exp = stages.model.export(project)
    assert exp["parity_max_abs_diff"] <= 1e-4
    assert read_metadata(Path(exp["onnx_path"]))["har.model"] == "classic"
    assert stages.registry.register(project)["version"] == "1"


def test_cv_protocol_table(project: Params) -> None:
    project.evaluate.cv_folds = 3
    project.evaluate.cv_epochs = 1
    project.train.classic = {"max_iter": 30}  # params.yaml's 300 rounds took minutes: the table is the point
    out = stages.model.evaluate_cv(project, models=["classic", "tinyhar"], show_progress=False)
    assert "| classic |" in out["table"] and "| tinyhar |" in out["table"]
    folds = Path(out["paths"]["folds"])
    rows = folds.read_text().splitlines()
    assert len(rows) == 1 + 3 * 2
    # every subject is a test subject exactly once per model
    import pandas as pd

    df = pd.read_csv(folds)
    for _, g in df.groupby("model"):
        subjects = sorted(int(s) for t in g["test_subjects"] for s in str(t).split())
        assert subjects == list(range(1, 9))


def test_cli_bad_model_file_is_a_clear_error(project: Params, tmp_path: Path) -> None:
    (project.train.out_dir / "trained").mkdir(parents=True)
    (project.train.out_dir / "trained" / "meta.json").write_text("not json at all")
    cmd = [sys.executable, "-m", "har.cli", "evaluate", "--params", str(tmp_path / "params.yaml")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "meta.json: not a har model description" in res.stderr
    assert "Traceback" not in res.stderr


def test_resume_continues_the_mlflow_run(project: Params) -> None:
    project.train.epochs = 2
    first = stages.model.train(project, show_progress=False)
    again = stages.model.train(project, resume=True, show_progress=False)
    assert again["run_id"] == first["run_id"]
    client = mlflow.MlflowClient()
    assert len(client.get_metric_history(first["run_id"], "val_macro_f1")) == 2  # nothing re-run
    assert again["val_macro_f1"] == pytest.approx(first["val_macro_f1"])


def test_experiments_never_move_the_champion(project: Params, tmp_path: Path) -> None:
    """dvc.yaml's `har register` (registry.promotion_policy initial): the first model on an empty
    registry becomes champion; an experiment's better model is registered and its verdict tagged,
    but only an explicit `har promote` moves the champion. Registering twice is a no-op."""
    import yaml
    from typer.testing import CliRunner

    from har.cli import app
    from har.tracking import tracking_uri

    params = tmp_path / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["registry"]["min_macro_f1"] = 0.0  # the deliberately weak first model must pass the floor
    params.write_text(yaml.safe_dump(raw))
    project.registry.min_macro_f1 = 0.0

    def har(*args: str) -> str:
        res = CliRunner().invoke(app, [*args, "--params", str(params)])
        assert res.exit_code == 0, res.output
        return res.output

    uri = tracking_uri(project)
    client = mlflow.MlflowClient(uri, uri)  # this project's store, whatever an earlier test set

    def champion() -> str:
        return str(client.get_model_version_by_alias("har-activity", "champion").version)

    project.train.epochs, project.train.lr = 1, 1e-5  # weak: the experiment below beats it
    stages.model.train(project, show_progress=False)
    stages.model.evaluate(project)
    exp = stages.model.export(project)
    assert len(exp["onnx_sha256"]) == 64
    assert client.get_run(exp["run_id"]).data.tags["onnx_sha256"] == exp["onnx_sha256"]
    out = har("register")
    assert "registered har-activity v1 (alias challenger)" in out
    assert "v1: promoted to champion (policy initial)" in out, out  # an empty registry's first
    assert "already registered as v1; nothing registered" in har("register")
    assert [str(v.version) for v in client.search_model_versions("name='har-activity'")] == ["1"]
    assert json.loads(project.registry.report_path.read_text())["created"] is False
    assert champion() == "1"

    # `dvc exp run -S train.epochs=3 -S train.lr=0.002`: a better model, registered, not served
    project.train.epochs, project.train.lr = 3, 2e-3
    stages.model.train(project, show_progress=False)
    stages.model.evaluate(project)
    stages.model.export(project)
    out = har("register")
    assert "registered har-activity v2" in out
    assert "v2: dry run, would promote (policy initial: champion v1 exists" in out, out
    assert champion() == "1"
    tags = client.get_model_version("har-activity", "2").tags
    assert tags["promotion.decision"] == "dry-run: would promote" and tags["promotion.policy"] == "initial"
    assert "beat champion v1" in tags["promotion.reasons"]
    registry = json.loads(project.registry.report_path.read_text())["promotion"]
    assert registry["dry_run"] and registry["passed"] and not registry["promoted"]
    assert "dry run, would promote" in har("promote", "--dry-run")
    assert champion() == "1"

    # an explicit `har promote` (policy gate) moves it
    assert "v2: promoted to champion (policy gate)" in har("promote")
    assert champion() == "2"
    assert client.get_model_version("har-activity", "2").tags["promotion.decision"] == "promoted"

    res = CliRunner().invoke(app, ["promote", "--policy", "sometimes", "--params", str(params)])
    assert res.exit_code == 1 and "must be one of gate, initial, dry-run; got 'sometimes'" in res.output
