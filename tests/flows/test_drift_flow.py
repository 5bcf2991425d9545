"""drift_check: over the threshold it emits har.drift.detected and the har-retrain deployment's trigger
(an automation on the Prefect server) starts a run; under the threshold nothing happens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from har.config import load_params
from har.monitoring.reference import build_reference, window_features, write_reference

pytestmark = pytest.mark.usefixtures("prefect_api")
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
REPO = Path(__file__).resolve().parents[2]


def _windows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, 1, 6)) + rng.normal(0, 1, (n, 64, 6)) + shift).astype(np.float32)


def _log(directory: Path, X: np.ndarray) -> Path:
    from har.serving.inference_log import make_record

    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(make_record("/v1/predict", "1", CHANNELS, X[i:i + 50], ["WALKING"] * 50))
             for i in range(0, len(X), 50)]
    (directory / "2030-01-01.jsonl").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("drift-project")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    ref = build_reference(window_features(_windows(2000, seed=0), CHANNELS))
    write_reference(ref, root / raw["monitor"]["reference_path"])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        yield root


@pytest.fixture(scope="module")
def deployment_id(project: Path) -> Any:
    from flows.deploy import build_deployments

    name = load_params(Path("params.yaml")).pipeline.deployment
    retrain = next(d for d in build_deployments("params.yaml") if d.name == name)
    return retrain.apply()


def _runs_of(deployment_id: Any) -> list[Any]:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                sort=FlowRunSort.ID_DESC, limit=50)  # 3.8.8 sends sort=null otherwise: 422

    return asyncio.run(read())


def test_no_drift_no_retrain(project: Path, deployment_id: Any) -> None:
    from flows.drift import drift_check

    before = len(_runs_of(deployment_id))
    doc = drift_check(params_path="params.yaml", recent=str(_log(project / "log_ok", _windows(500, 1))))
    assert doc["drifted"] is False and doc["n_recent"] == 500
    assert doc["retrain_event_id"] is None
    time.sleep(3)  # give a (wrongly) fired automation the time to create a run
    assert len(_runs_of(deployment_id)) == before
    assert Path(doc["report_path"]).is_file() and (project / "reports/drift/latest.json").is_file()


def test_drift_triggers_retrain_run(project: Path, deployment_id: Any) -> None:
    from flows.drift import drift_check

    recent = _log(project / "log_shifted", _windows(500, 2, shift=2.0))
    before = {r.id for r in _runs_of(deployment_id)}
    doc = drift_check(params_path="params.yaml", recent=str(recent))
    assert doc["drifted"] is True and doc["n_drifted"] == 6
    assert doc["retrain_event_id"]
    # the server's trigger service reacts to the event: a new run of har-retrain appears
    deadline = time.monotonic() + 60
    while not (new := [r for r in _runs_of(deployment_id) if r.id not in before]):
        assert time.monotonic() < deadline, "no har-retrain run 60 s after the drift event"
        time.sleep(1)
    assert len(new) == 1
    # nobody serves the deployment in this test: the run waits to be picked up
    assert new[0].state.type.value in {"SCHEDULED", "PENDING"}
    assert new[0].parameters["promotion_policy"] == "gate"  # retraining on drift may move the champion
