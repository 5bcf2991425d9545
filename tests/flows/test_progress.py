"""Progress artifacts: the reporters move one Prefect progress artifact per run; the training flow
reports its epochs, and the CV protocol reports its folds through `on_fold`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = pytest.mark.usefixtures("prefect_api")


def _artifact(flow_run_id: Any, key: str) -> dict[str, Any]:
    """The flow run's (latest) artifact with ``key``, through the REST API."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [str(flow_run_id)]}},
            "limit": 10, "offset": 0, "sort": "CREATED_DESC"}
    res = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body, timeout=30)
    res.raise_for_status()
    found = res.json()
    assert len(found) == 1, found  # one artifact per run, updated in place
    return found[0]


def test_reporter_moves_one_artifact_from_0_to_100() -> None:
    from prefect import flow

    from flows.progress import TRAINING_KEY, epoch_reporter

    @flow
    def three_epochs() -> list[tuple[float, str]]:
        from prefect.runtime import flow_run

        seen = []
        report, on_epoch = epoch_reporter(5, "cnn1d")
        seen.append(_read(flow_run.id))
        for epoch, f1 in ((1, 0.5), (2, 0.6), (3, 0.7)):
            on_epoch(epoch, {"val_macro_f1": f1, "train_loss": 1.0})
            seen.append(_read(flow_run.id))
        report.finish("early stop")  # 3 of 5 epochs: early stopping still ends at 100 %
        seen.append(_read(flow_run.id))
        return seen

    def _read(run_id: Any) -> tuple[float, str]:
        a = _artifact(run_id, TRAINING_KEY)
        return a["data"], a["description"]

    seen = three_epochs()
    assert [round(p, 1) for p, _ in seen] == [0.0, 20.0, 40.0, 60.0, 100.0]
    assert seen[0][1] == "training cnn1d: 0/5 epochs"
    assert seen[3][1] == "training cnn1d: epoch 3/5, val macro-F1 0.700"
    assert seen[4][1] == "training cnn1d: done after 3 epochs, early stop"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, make_project: Any) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("progress-project"),
                        evaluate={"cv_folds": 2, "cv_models": ["classic"]},
                        train={"classic": {"estimator": "hgb", "max_iter": 20, "learning_rate": 0.1,
                                           "max_leaf_nodes": 15, "l2_regularization": 1.0}})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        yield root


@pytest.mark.integration
@pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")
def test_training_flow_reports_its_epochs(project: Path) -> None:
    from flows.progress import TRAINING_KEY
    from flows.training import training_pipeline

    state = training_pipeline(params_path="params.yaml", stop_after="train", return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    a = _artifact(state.state_details.flow_run_id, TRAINING_KEY)
    assert a["type"] == "progress" and a["data"] == 100.0
    # tinyhar for 2 epochs (the project's params)
    assert a["description"].startswith(f"training tinyhar: done after {out['train']['epochs_run']} epochs")

@pytest.mark.integration
@pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")
def test_cv_reports_its_folds(project: Path) -> None:
    from prefect import flow

    from flows.progress import CV_KEY, fold_reporter
    from har import stages
    from har.config import load_params

    p = load_params(Path("params.yaml"))
    seen: list[float] = []

    @flow
    def cv() -> dict[str, Any]:
        from prefect.runtime import flow_run

        report, on_fold = fold_reporter(p.evaluate.cv_folds, p.evaluate.cv_models)

        def watched(row: dict[str, Any]) -> None:
            on_fold(row)
            seen.append(_artifact(flow_run.id, CV_KEY)["data"])

        return stages.model.evaluate_cv(p, on_fold=watched, show_progress=False)

    state = cv(return_state=True)
    assert state.is_completed(), state.message
    assert seen == [50.0, 100.0]
    a = _artifact(state.state_details.flow_run_id, CV_KEY)
    assert a["description"].startswith("subject CV of classic: fold 2/2, last: classic fold 2 macro-F1 ")
