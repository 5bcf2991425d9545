"""Suite-wide hygiene: MLflow's set_tracking_uri/set_registry_uri write MLFLOW_* environment
variables, which would otherwise leak from one test into every later test and subprocess.

Fixtures shared by several test folders live here, where pytest finds them for every test:
- `s3_server`: a real S3 endpoint on 127.0.0.1 (see S3Server below);
- `processed_root` / `project`: a small real-data project, HAPT subjects 1-8 from the mirror
  windowed once per session, and a fresh project (models, reports, MLflow store) per test.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from project_support import MIRROR, write_project_params

from har.config import Params, load_params


@pytest.fixture(autouse=True)
def _restore_mlflow_env() -> Iterator[None]:
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        if key not in before:
            del os.environ[key]
    os.environ.update(before)


# ----------------------------------------------------------------------------------------------
# `s3_server`: a real S3 endpoint on 127.0.0.1 for tests (lake, DVC remote, MLflow artifacts).
#
#     def test_x(s3_server: S3Server) -> None:
#         url = s3_server.bucket("lake")          # creates the bucket, returns "s3://lake"
#         client = s3_server.client()             # boto3 S3 client (har.s3.s3_client)
#
# While the test runs, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_DEFAULT_REGION point at the server (subprocesses inherit them); ~/.aws is ignored. The
# server is `python -m har.stack.s3server` in a subprocess with generated credentials and a
# tmp state dir; it is stopped (SIGTERM) at the end of the test.

S3_START_TIMEOUT_S = 60.0


@dataclass
class S3Server:
    endpoint: str              # http://127.0.0.1:PORT
    access_key_id: str
    secret_access_key: str
    region: str
    state_dir: Path
    port: int
    log_path: Path
    save_interval_s: float = 2.0
    process: subprocess.Popen | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """The variables that point boto3 (and DVC, MLflow) at this server."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_DEFAULT_REGION": self.region}

    def client(self) -> Any:
        from har.s3 import s3_client

        return s3_client()

    def bucket(self, name: str) -> str:
        """Create bucket name (if missing) and return its s3:// URL."""
        from har.s3 import ensure_bucket

        ensure_bucket(self.client(), name)
        return f"s3://{name}"

    def start(self, *, save_interval_s: float | None = None, buckets: str = "") -> None:
        """Start the server (again) on the same port and state dir; returns once it is healthy."""
        if save_interval_s is not None:
            self.save_interval_s = save_interval_s
        env = {**os.environ, **self.env()}
        cmd = [sys.executable, "-m", "har.stack.s3server", "--host", "127.0.0.1", "--port",
               str(self.port), "--state-dir", str(self.state_dir), "--save-interval",
               str(self.save_interval_s)] + (["--buckets", buckets] if buckets else [])
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + S3_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"s3server exited with {self.process.returncode}:\n"
                                   f"{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"s3server not healthy after {S3_START_TIMEOUT_S} s:\n"
                           f"{self.log_path.read_text()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_health", timeout=5) as r:
            return json.loads(r.read())

    def stop(self, *, kill: bool = False) -> int | None:
        """SIGTERM (state saved) or, with kill=True, SIGKILL (a crash); returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_server(tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3server")
    port = _free_port()
    server = S3Server(endpoint=f"http://127.0.0.1:{port}",
                      access_key_id="AKIA" + secrets.token_hex(8).upper(),
                      secret_access_key=secrets.token_urlsafe(30), region="us-east-1",
                      state_dir=root / "state", port=port, log_path=root / "s3server.log")
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(root / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(root / "no-aws-credentials"))
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------
# A small real-data project: HAPT subjects 1-8 from the mirror, windowed, in a temp folder. Used by
# tests/models, training, stages, export, behavioral and the fault drills in tests/integration.
# The params writer is a plain module (tests/project_support.py) so a test can import it too.


@pytest.fixture(scope="session")
def processed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Windows, splits and label map of subjects 1-8 (2 and 4 are test subjects)."""
    if not MIRROR:
        pytest.skip("HAR_DATA_MIRROR not set: these tests train on real HAPT subjects")
    from har import stages

    root = tmp_path_factory.mktemp("har-small")
    p = load_params(write_project_params(root))
    p.data.raw_dir = Path(MIRROR)  # read the mirror in place: fetch is tested elsewhere
    stages.data.ingest(p)
    stages.data.preprocess(p)
    return root


@pytest.fixture
def project(processed_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Params:
    """Params for a fresh project (own models/, reports/, MLflow store) over the shared windows.
    Its params.yaml is ``tmp_path / "params.yaml"`` (for `har` subprocesses)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ENABLE_TELEMETRY", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = write_project_params(tmp_path, preprocess={"out_dir": str(processed_root / "data/processed")})
    p = load_params(path)
    p.data.interim_path = processed_root / "data/interim/recordings.parquet"
    return p
