"""The training flow on HAPT subjects 1-6 against a temporary Prefect API: full run, cache hits on
the second run (which registers nothing), a missing output re-runs its stage, a validation failure
fails the flow, the stages' log lines reach the flow run's logs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set"),
    pytest.mark.usefixtures("prefect_api"),
]
# the stages of dvc.yaml, in its order: the flow has no list of its own
ALL = ["fetch", "ingest", "validate", "preprocess", "validate_windows", "train", "evaluate", "export",
       "register"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, make_project: Any) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("flow-project"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        yield root


def _artifacts(flow_run_id: Any, key: str) -> list[dict[str, Any]]:
    """Artifacts of one flow run through the REST API (the 3.8.8 client sends nulls it rejects)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [str(flow_run_id)]}},
            "limit": 10, "offset": 0, "sort": "CREATED_DESC"}
    res = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body, timeout=30)
    res.raise_for_status()
    return res.json()


def _logs(flow_run_id: Any, *expected: str) -> str:
    """The flow run's log messages through the REST API, once every ``expected`` text is in them
    (the API log handler sends in batches)."""
    import time

    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"logs": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 200, "offset": 0,
            "sort": "TIMESTAMP_ASC"}
    deadline = time.monotonic() + 30
    while True:
        res = httpx.post(f"{PREFECT_API_URL.value()}/logs/filter", json=body, timeout=30)
        res.raise_for_status()
        text = "\n".join(f"{r['name']}: {r['message']}" for r in res.json())
        if all(e in text for e in expected) or time.monotonic() > deadline:
            return text
        time.sleep(1)


def _versions() -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    return sorted(str(v.version) for v in client.search_model_versions("name='har-activity'"))


def _mlflow_runs(root: Path) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


def _champion() -> str | None:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    try:
        return str(client.get_model_version_by_alias("har-activity", "champion").version)
    except MlflowException:
        return None


@pytest.fixture(scope="module")
def first_run(project: Path) -> tuple[Any, dict]:
    from flows.training import training_pipeline

    state = training_pipeline(params_path="params.yaml", return_state=True)
    assert state.is_completed(), state.message
    import shutil

    shutil.copy(project / "models/trained/model.pt", project / "first_flow_model.pt")  # later tests retrain
    return state, state.result()


def test_full_run_completes_with_artifacts(project: Path, first_run: tuple[Any, dict]) -> None:
    state, out = first_run
    assert list(out["states"]) == ALL
    assert set(out["states"].values()) == {"Completed"}
    m = out["metrics"]
    assert 0 <= m["macro_f1"] <= 1 and 0 <= m["accuracy"] <= 1 and m["latency_p50_ms"] > 0
    # an ad-hoc run has policy initial: on an empty registry the gate decides
    assert out["promotion"]["promoted"] is True and out["promotion"]["policy"] == "initial"
    assert _champion() == str(out["promotion"]["version"])
    assert out["register"]["created"] is True
    assert (project / "data/processed/reference_stats.json").is_file()
    run_id = state.state_details.flow_run_id
    table = _artifacts(run_id, "har-metrics")
    assert table and "macro_f1" in str(table[0]['data']) and "promoted" in str(table[0]['data'])
    link = _artifacts(run_id, "mlflow-run")
    assert link and out["train"]["run_id"] in str(link[0]["data"])
    assert "#/experiments/" in str(link[0]["data"])
    image = _artifacts(run_id, "confusion-matrix")
    assert image and str(image[0]['data']).startswith("data:image/png;base64,")
    # the stages' own outcome lines (har.* loggers) are in the flow run's logs, not only states
    version = out["register"]["version"]
    expected = ("har.stages.data: validation passed: ", "expectations met",
                "har.stages.model: test subjects [2, 4]: accuracy ",
                "har.stages.model: trained tinyhar: val macro-F1",
                f"har.stages.registry: registered har-activity v{version} (alias challenger)",
                f"v{version}: promoted to champion (policy initial)")
    logs = _logs(run_id, *expected)
    for line in expected:
        assert line in logs, (line, logs[-3000:])


def test_second_run_hits_the_cache(project: Path, first_run: tuple[Any, dict]) -> None:
    from flows.training import training_pipeline

    runs_before = _mlflow_runs(project)
    versions = _versions()
    state = training_pipeline(params_path="params.yaml", return_state=True)
    out = state.result()
    cached = {k for k, v in out["states"].items() if v == "Cached"}
    assert cached == set(ALL) - {"register"}, out["states"]
    # register reads and writes the live registry: never cached (it is idempotent)
    assert out["states"]["register"] == "Completed"
    assert _mlflow_runs(project) == runs_before  # train did not run again
    assert out["train"]["run_id"] == first_run[1]["train"]["run_id"]
    # the same run's model is not registered again; the champion stays
    version = first_run[1]["register"]["version"]
    first_reg = {k: v for k, v in first_run[1]["register"].items() if k not in ("promotion", "summary")}
    assert {k: v for k, v in out["register"].items() if k in first_reg} == {**first_reg, "created": False}
    assert _versions() == versions == [version]
    assert _champion() == version and not out["promotion"]["promoted"]
    logs = _logs(state.state_details.flow_run_id, f"already registered as v{version}")
    assert f"already registered as v{version}; nothing registered" in logs, logs[-3000:]


def test_missing_output_reruns_its_stage(project: Path, first_run: tuple[Any, dict]) -> None:
    from flows.training import training_pipeline

    (project / "data/processed/reference_stats.json").unlink()  # an output of preprocess
    out = training_pipeline(params_path="params.yaml", stop_after="validate_windows")
    assert out["states"]["preprocess"] == "Completed"
    assert (project / "data/processed/reference_stats.json").is_file()
    # preprocess rewrote the same windows: its consumers see unchanged contents
    assert out["states"]["validate_windows"] == "Cached"
    assert {out["states"][s] for s in ("fetch", "ingest", "validate")} == {"Cached"}


def test_changed_train_params_retrain_only(project: Path, first_run: tuple[Any, dict]) -> None:
    """A train.* change re-runs train and what consumes its outputs; the data stages stay cached."""
    from flows.training import training_pipeline

    out = training_pipeline(params_path="params.yaml", overrides={"train.epochs": 1})
    states = out["states"]
    data_stages = ("fetch", "ingest", "validate", "preprocess", "validate_windows")
    assert {states[s] for s in data_stages} == {"Cached"}
    assert {states[s] for s in ("train", "evaluate", "export", "register")} == {"Completed"}, states
    # a params key no stage reads changes nothing
    again = training_pipeline(params_path="params.yaml", overrides={"train.epochs": 1, "serve.port": 9000})
    assert set(again["states"].values()) - {"Cached"} == {"Completed"}
    assert {k for k, v in again["states"].items() if v == "Completed"} == {"register"}, again["states"]


def test_validation_failure_fails_flow_and_keeps_champion(project: Path,
                                                          first_run: tuple[Any, dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flows.training import training_pipeline

    champion = _champion()
    runs_before = _mlflow_runs(project)
    interim = project / "data/interim/recordings.parquet"
    table = pq.read_table(interim)
    df = table.to_pandas()
    df.loc[df.index[100:110], "acc_x"] = 99.0  # beyond any phone accelerometer (16 g)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(
        table.schema.metadata), interim)

    state = training_pipeline(params_path="params.yaml", return_state=True)
    assert state.is_failed()
    report = _artifacts(state.state_details.flow_run_id, "validation-report")
    assert report and "acc_x" in str(report[0]['data']) and "Nothing was trained" in str(report[0]['data'])
    assert (project / "reports/validation.failed.json").is_file()
    assert _champion() == champion
    assert _mlflow_runs(project) == runs_before


def test_flow_model_equals_direct_stage_model(project: Path, first_run: tuple[Any, dict],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow trains the same model as the stages called directly (what `har`/`dvc repro` run)."""
    import torch

    from har import stages
    from har.config import load_params

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    p = load_params(project / "params.yaml")
    p.train.out_dir, p.train.reports_dir = tmp_path / "models", tmp_path / "reports"
    stages.model.train(p, show_progress=False)
    direct = torch.load(tmp_path / "models/trained/model.pt", weights_only=True)["state_dict"]
    flow = torch.load(project / "first_flow_model.pt", weights_only=True)["state_dict"]
    assert direct.keys() == flow.keys()
    for key in direct:
        assert torch.equal(direct[key], flow[key]), key
