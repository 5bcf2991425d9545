"""`har pipeline serve` against a real `prefect server start`: both deployments, with their crons."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group we started (the server forks uvicorn workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_UI_ENABLED": "false"}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "prefect server did not start in 120 s"
            time.sleep(1)
        yield api, env
    finally:
        _stop(proc)
        log.close()


def _deployment(api: str, name: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_deployment_by_name(name)

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(read())


def test_serve_registers_scheduled_deployments(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from prefect.exceptions import ObjectNotFound

    api, env = server
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["pipeline"].update(cron="15 4 * * 2", drift_cron="*/30 * * * *", timezone="Europe/Berlin")
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "har.cli", "pipeline", "serve"], cwd=project, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        found: dict[str, Any] = {}
        while len(found) < 3:
            for name in ("training-pipeline/har-retrain", "drift-check/drift-check", "tune/har-tune"):
                with contextlib.suppress(ObjectNotFound):
                    found[name] = _deployment(api, name)
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        _stop(proc)
        log.close()
    retrain = found["training-pipeline/har-retrain"].schedules[0].schedule
    assert (retrain.cron, retrain.timezone) == ("15 4 * * 2", "Europe/Berlin")
    drift = found["drift-check/drift-check"].schedules[0].schedule
    assert drift.cron == "*/30 * * * *"
    retrain_params = found["training-pipeline/har-retrain"].parameters
    assert retrain_params == {"params_path": "params.yaml", "promotion_policy": "gate"}
    assert found["tune/har-tune"].schedules == []  # on demand only
    assert found["tune/har-tune"].parameters == {"params_path": "params.yaml"}
