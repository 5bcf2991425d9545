"""The deployed stack, end to end, on this machine: `har stack up` (PostgreSQL, S3, MLflow server,
Prefect server + worker, API) in a clone of the repo, then everything a team does with it.

The tests run in file order and share one stack (module scope): lake → deploy → a run on the worker
→ the registry on the server with artifacts in S3 → the API's hot reload → DVC on S3 → faults →
down/up keeps everything → the UIs as a person sees them. Screenshots land in reports/ui/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
BIN = Path(sys.executable).parent
MODEL = "har-activity"
SCREENSHOTS = REPO / "reports" / "ui"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800),
              pytest.mark.skipif(not MIRROR or MIRROR.startswith("s3:"),
                                 reason="needs HAR_DATA_MIRROR naming a folder")]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_"))}  # nothing of the caller's servers
    env.update({"PATH": f"{BIN}:{env.get('PATH', '')}", "GX_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "MLFLOW_ENABLE_TELEMETRY": "false",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HAR_DATA_MIRROR": str(MIRROR)})
    return env


class Project:
    """A clone of the repo with small params and free ports; runs `har`/`dvc` in it."""

    def __init__(self, root: Path, ports: dict[str, int]) -> None:
        self.root, self.ports = root, ports
        self.env = _base_env()

    def run(self, *args: str, ok: bool = True, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(list(args), cwd=self.root, env={**self.env, **(env or {})},
                             capture_output=True, text=True, timeout=timeout)
        if ok:
            assert res.returncode == 0, f"{' '.join(args)} → {res.returncode}\n{res.stdout[-3000:]}\n" \
                                        f"{res.stderr[-3000:]}"
        return res

    def har(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "har"), *args, **kw)

    def use_stack(self) -> None:
        """The client environment `eval "$(har stack env)"` gives a shell."""
        out = self.har("stack", "env").stdout
        self.env.update(dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()))
        self.env["PREFECT_HOME"] = str(self.root / ".stack" / "prefect-client")

    def api(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports['api']}{path}", timeout=30)

    def pid(self, service: str) -> int:
        return int((self.root / ".stack" / "run" / f"{service}.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def project() -> Iterator[Project]:
    # PostgreSQL runs as the `postgres` user: its data directory must be reachable, and pytest's
    # tmp_path (0700, owned by root) is not.
    base = Path(tempfile.mkdtemp(prefix="har-stack-test-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    names = ["postgres", "s3", "mlflow", "prefect", "worker", "api"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["data"]["subjects"] = [1, 2, 3, 4, 5, 6]
    raw["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    raw["train"].update(model="tinyhar", epochs=3, min_epochs=1, patience=3, batch_size=128)
    raw["export"]["latency_runs"] = 20
    raw["registry"].update(min_macro_f1=0.0, latency_budget_ms=1000.0, max_parity_diff=0.01)
    raw["serve"].update(port=ports["api"], reload_interval_s=1)
    raw["stack"].update(postgres_port=ports["postgres"], s3_port=ports["s3"], mlflow_port=ports["mlflow"],
                        prefect_port=ports["prefect"], worker_health_port=ports["worker"],
                        mlflow_workers=1, startup_timeout_s=240)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "commit", "-qam", "small stack run"], cwd=root, check=True,
                   env={**os.environ, **ident})
    proj = Project(root, ports)
    proj.env.update(ident)
    try:
        yield proj
    finally:
        subprocess.run([str(BIN / "har"), "stack", "down"], cwd=root, env=proj.env, capture_output=True,
                       timeout=300)
        for log in (root / ".stack" / "logs").glob("*.log"):  # kept for a failed run's post-mortem
            (SCREENSHOTS.parent / "stack-logs").mkdir(parents=True, exist_ok=True)
            shutil.copy(log, SCREENSHOTS.parent / "stack-logs" / log.name)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(project: Project) -> Project:
    out = project.har("stack", "up", timeout=900).stdout
    for name in ("postgres", "s3", "mlflow", "prefect", "worker", "api"):
        assert f"{name:<9} started" in out, out
    project.use_stack()
    return project


def _prefect(project: Project, fn: Any) -> Any:
    """Run ``await fn(client)`` against the stack's Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go() -> Any:
        async with get_client() as client:
            return await fn(client)

    with temporary_settings({PREFECT_API_URL: project.env["PREFECT_API_URL"]}):
        return asyncio.run(go())


def _mlflow(project: Project) -> Any:
    from mlflow.tracking import MlflowClient

    uri = project.env["MLFLOW_TRACKING_URI"]
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _s3_keys(project: Project, bucket: str, prefix: str = "") -> list[str]:
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=project.env["AWS_ENDPOINT_URL_S3"],
                      aws_access_key_id=project.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=project.env["AWS_SECRET_ACCESS_KEY"],
                      region_name=project.env["AWS_DEFAULT_REGION"],
                      config=Config(s3={"addressing_style": "path"}))
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _params(project: Project) -> dict[str, Any]:
    return yaml.safe_load((project.root / "params.yaml").read_text())


def _finished_flow_runs(project: Project) -> list[str]:
    """Ids of the flow runs that ran (the scheduler's upcoming runs come and go on their own)."""
    from prefect.client.schemas.sorting import FlowRunSort

    runs = _prefect(project, lambda c: c.read_flow_runs(limit=200, offset=0, sort=FlowRunSort.ID_DESC))
    return sorted(str(r.id) for r in runs if r.state is not None and r.state.is_final())


def _wait_flow_run(project: Project, run_id: Any, timeout_s: float = 900) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        run = _prefect(project, lambda c: c.read_flow_run(run_id))
        if run.state is not None and run.state.is_final():
            return run
        assert time.monotonic() < deadline, f"flow run {run_id} still {run.state} after {timeout_s} s"
        time.sleep(3)


# ------------------------------------------------------------------------------------------------


def test_stack_is_healthy_and_up_is_idempotent(stack: Project) -> None:
    rows = json.loads(stack.har("stack", "status", "--json").stdout)
    assert {r["name"]: r["healthy"] for r in rows} == dict.fromkeys(
        ["postgres", "s3", "mlflow", "prefect", "worker", "api"], True)
    again = stack.har("stack", "up").stdout
    assert again.count("already running") == 6, again
    up = json.loads((stack.root / ".stack" / "run" / "up.json").read_text())
    assert up["seconds_to_healthy"] > 0


def test_a_taken_port_is_named(stack: Project, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = _params(stack)
        other["stack"].update(dir=str(tmp_path / "other-stack"), postgres_port=port)
        (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
        res = stack.har("stack", "up", "--only", "postgres", "-p", str(tmp_path / "other.yaml"), ok=False)
    assert res.returncode == 1
    assert f"port {port} on 127.0.0.1 is already taken" in res.stderr
    assert "Traceback" not in res.stderr


def test_raw_data_lake_round_trip(stack: Project) -> None:
    # the mirror folder → verified data/raw → the lake; then a fetch that can only come from the lake
    stack.har("data", "fetch", env={"HAR_DATA_MIRROR": str(MIRROR)})
    pushed = stack.har("data", "push").stdout
    assert "131 uploaded" in pushed or "0 uploaded" in pushed, pushed
    assert len(_s3_keys(stack, _params(stack)["stack"]["lake_bucket"], "raw/hapt/")) == 131
    shutil.rmtree(stack.root / "data" / "raw")
    fetched = stack.har("data", "fetch")  # HAR_DATA_MIRROR is the lake in the stack's environment
    assert (stack.root / "data" / "raw" / "hapt" / "RawData" / "labels.txt").is_file(), fetched.stdout


def test_scheduled_retraining_runs_on_the_worker(stack: Project) -> None:
    out = stack.har("pipeline", "deploy").stdout
    assert "deployed training-pipeline/har-retrain on work pool har-pool" in out
    deployment = _prefect(stack, lambda c: c.read_deployment_by_name("training-pipeline/har-retrain"))
    params = _params(stack)
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == (params["pipeline"]["cron"], params["pipeline"]["timezone"])
    assert deployment.work_pool_name == "har-pool"
    assert deployment.parameters == {"params_path": "params.yaml", "promotion_policy": "gate"}
    automations = _prefect(stack, lambda c: c.read_automations_by_name("retrain-on-drift"))
    assert automations and "har.drift.detected" in automations[0].trigger.expect
    # one run, created the way the scheduler creates them, executed by the worker
    run = _prefect(stack, lambda c: c.create_flow_run_from_deployment(deployment.id))
    done = _wait_flow_run(stack, run.id)
    assert done.state.is_completed(), done.state
    worker_log = (stack.root / ".stack" / "logs" / "worker.log").read_text()
    assert str(run.id) in worker_log
    body = {"logs": {"flow_run_id": {"any_": [str(run.id)]}}, "limit": 200, "offset": 0,
            "sort": "TIMESTAMP_ASC"}
    logs = httpx.post(f"{stack.env['PREFECT_API_URL']}/logs/filter", json=body, timeout=30).json()
    text = "\n".join(entry["message"] for entry in logs)
    assert "validation passed" in text and "test subjects" in text, text[-3000:]


def test_the_registry_lives_on_the_server_with_artifacts_in_s3(stack: Project) -> None:
    client = _mlflow(stack)
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert len(versions) == 1
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1"
    assert champion.tags["promotion.decision"] == "promoted"
    assert champion.tags["promotion.policy"] == "gate"
    # the ONNX model's bytes are in the artifacts bucket, uploaded through the server's proxy
    keys = _s3_keys(stack, _params(stack)["stack"]["artifacts_bucket"])
    assert any(k.endswith("/model.onnx") for k in keys), keys[:20]
    # the API polls the alias (serve.reload_interval_s = 1) and serves it without a restart
    deadline = time.monotonic() + 120
    while (r := stack.api("/v1/model")).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(1)
    assert r.json()["name"] == MODEL and r.json()["version"] == "1"


def test_dvc_push_pull_round_trip_on_s3(stack: Project) -> None:
    stack.run(str(BIN / "dvc"), "repro", "preprocess", timeout=900)
    pushed = stack.run(str(BIN / "dvc"), "push").stdout  # the default remote is `stack` while it runs
    assert "pushed" in pushed, pushed
    assert _s3_keys(stack, _params(stack)["stack"]["dvc_bucket"], "cache/")
    # the cache and every cached output of the data stages go; then everything comes back from S3
    shutil.rmtree(stack.root / ".dvc" / "cache")
    shutil.rmtree(stack.root / "data" / "raw")
    for path in ("data/interim/recordings.parquet", "data/processed/windows.npz",
                 "data/processed/splits.json", "data/processed/reference_stats.json"):
        (stack.root / path).unlink()
    pulled = stack.run(str(BIN / "dvc"), "pull", "--with-deps", "preprocess").stdout
    assert "fetched" in pulled or "added" in pulled, pulled
    status = stack.run(str(BIN / "dvc"), "status", "preprocess").stdout
    assert "Data and pipelines are up to date" in status, status


def test_mlflow_server_down_the_api_keeps_serving(stack: Project) -> None:
    stack.har("stack", "down", "--only", "mlflow")
    try:
        deadline = time.monotonic() + 120
        while "unreachable" not in (ready := stack.api("/readyz").json()).get("source", ""):
            assert time.monotonic() < deadline, ready
            time.sleep(1)
        assert stack.api("/readyz").status_code == 200 and ready["version"] == "1"
        window = [[0.1] * 6] * 128
        r = httpx.post(f"http://127.0.0.1:{stack.ports['api']}/v1/predict", timeout=30,
                       json={"channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
                             "windows": [window]})
        assert r.status_code == 200 and r.json()["model"]["version"] == "1"
    finally:
        stack.har("stack", "up", "--only", "mlflow", timeout=600)
    deadline = time.monotonic() + 120
    while stack.api("/readyz").json().get("source") != "ok":
        assert time.monotonic() < deadline
        time.sleep(1)


def test_s3_down_during_model_logging_fails_cleanly(stack: Project) -> None:
    client = _mlflow(stack)
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    onnx_before = (stack.root / "models" / "model.onnx").read_bytes()
    report_before = (stack.root / "reports" / "export.json").read_text()
    stack.har("stack", "down", "--only", "s3")
    try:
        res = stack.har("export", ok=False, timeout=600, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})
        assert res.returncode == 1
        assert "export: logging the ONNX model to MLflow" in res.stderr and "Traceback" not in res.stderr
        # the previous export is untouched, so nothing new can be registered from it
        assert (stack.root / "models" / "model.onnx").read_bytes() == onnx_before
        assert (stack.root / "reports" / "export.json").read_text() == report_before
    finally:
        stack.har("stack", "up", "--only", "s3")
    registered = stack.har("register").stdout  # the old export: already registered, no new version
    assert "already registered as v1" in registered
    assert len(client.search_model_versions(f"name='{MODEL}'")) == before


def test_postgres_restart_during_a_flow_run(stack: Project) -> None:
    deployment = _prefect(stack, lambda c: c.read_deployment_by_name("training-pipeline/har-retrain"))
    run = _prefect(stack, lambda c: c.create_flow_run_from_deployment(
        deployment.id, parameters={"use_cache": False, "overrides": {"train.epochs": 8}}))
    deadline = time.monotonic() + 600
    while _prefect(stack, lambda c: c.read_flow_run(run.id)).state.type.value != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(1)
    time.sleep(5)  # into the run: every task state and MLflow call goes through PostgreSQL
    stack.har("stack", "down", "--only", "postgres")
    time.sleep(3)
    stack.har("stack", "up", "--only", "postgres")
    done = _wait_flow_run(stack, run.id)
    # retried through the outage: completed, or failed with a recorded error — never left running
    assert done.state.type.value in {"COMPLETED", "FAILED"}, done.state
    assert done.state.is_completed(), f"the run did not survive a PostgreSQL restart: {done.state}"


def test_down_then_up_keeps_runs_versions_aliases_and_buckets(stack: Project) -> None:
    client = _mlflow(stack)
    versions = sorted(v.version for v in client.search_model_versions(f"name='{MODEL}'"))
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    runs = len(client.search_runs([client.get_experiment_by_name("har").experiment_id]))
    flow_runs = _finished_flow_runs(stack)
    lake = len(_s3_keys(stack, _params(stack)["stack"]["lake_bucket"]))
    down = stack.har("stack", "down").stdout
    assert down.count("stopped") >= 6
    assert stack.har("stack", "status", ok=False).returncode == 1
    stack.har("stack", "up", timeout=900)
    client = _mlflow(stack)
    assert sorted(v.version for v in client.search_model_versions(f"name='{MODEL}'")) == versions
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion
    assert len(client.search_runs([client.get_experiment_by_name("har").experiment_id])) == runs
    assert _finished_flow_runs(stack) == flow_runs
    assert len(_s3_keys(stack, _params(stack)["stack"]["lake_bucket"])) == lake
    deadline = time.monotonic() + 120
    while stack.api("/readyz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(1)
    assert stack.api("/v1/model").json()["version"] == champion


def test_the_uis_show_the_schedule_the_run_and_the_champion(stack: Project) -> None:
    from ui_support import render

    deployment = _prefect(stack, lambda c: c.read_deployment_by_name("training-pipeline/har-retrain"))
    prefect_ui = f"http://127.0.0.1:{stack.ports['prefect']}/deployments/deployment/{deployment.id}"
    text = render(prefect_ui, SCREENSHOTS / "prefect-har-retrain.png")
    assert "har-retrain" in text and "har-pool" in text
    assert "At 03:00 AM, only on Monday" in text  # pipeline.cron "0 3 * * 1", as the UI words it
    assert "Completed" in text and "retrain-on-drift" in text
    mlflow_ui = f"http://127.0.0.1:{stack.ports['mlflow']}/#/models/{MODEL}"
    text = render(mlflow_ui, SCREENSHOTS / "mlflow-har-activity.png")
    assert MODEL in text and "champion" in text and "Version 1" in text, text[:2000]
