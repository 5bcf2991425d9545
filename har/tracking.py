"""MLflow set-up in one place: URI (env wins over params), experiment, data digest, git commit."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from har.config import Params

# Requirements logged with every model: explicit, so MLflow doesn't spend minutes inferring them.
TORCH_REQUIREMENTS = ["torch==2.13.0", "numpy==2.4.6"]
ONNX_REQUIREMENTS = ["onnxruntime==1.32.0", "onnx==1.23.2", "numpy==2.4.6"]
SKLEARN_REQUIREMENTS = ["scikit-learn==1.9.1", "skops==0.16.0", "torch==2.13.0", "numpy==2.4.6"]


def tracking_uri(p: Params) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or p.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # a relative SQLite path is relative to the project, whatever the working directory of MLflow
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


# Client-side MLflow settings for every har process (environment variables, so an operator can still
# override them). Proxy multipart download off: a tracking server with S3 artifacts otherwise hands
# out presigned S3 URLs and clients download straight from S3, so the API and the workers would need
# network access to the bucket; through the server's proxy they need only the tracking URI.
MLFLOW_CLIENT_DEFAULTS = {"MLFLOW_ENABLE_TELEMETRY": "false",
                          "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}


def mlflow_client_defaults() -> None:
    for key, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def setup_mlflow(p: Params) -> str:
    """Point MLflow at the configured store and return the experiment id (created if missing)."""
    import mlflow

    mlflow_client_defaults()
    uri = tracking_uri(p)
    # MLflow's setters also export MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI into os.environ, where
    # they would be mistaken for the user's choice (env wins over params) by every later call and
    # subprocess; keep the environment as the user set it.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    exp = mlflow.get_experiment_by_name(p.tracking.experiment)
    if exp is not None:
        mlflow.set_experiment(experiment_id=exp.experiment_id)
        return exp.experiment_id
    # With an embedded store the artifacts live beside it in the project, not in ./mlruns of
    # whichever directory a command happened to run in; a server picks its own artifact root.
    location = None
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        location = p.tracking.artifact_dir.resolve().as_uri()
    exp_id = mlflow.create_experiment(p.tracking.experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def file_digest(paths: list[Path]) -> str:
    """sha256 over the bytes of ``paths`` (in order): ties a run to the exact data it saw."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    sha = out.stdout.strip() if out.returncode == 0 else "unknown"
    return f"{sha}-dirty" if dirty and sha != "unknown" else sha


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out
