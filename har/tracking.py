"""MLflow in one place: the tracking URI (one resolver), the experiment, the runs stages log to, and
how each kind of model is logged. Stages call these; nothing else talks to MLflow's fluent API.

MLflow itself is imported inside the functions: `har --help`, config parsing and the API's import
graph stay free of it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from har.config import Params
from har.contracts import CLASSIC_MODEL_FILE, RUN_MARKER
from har.errors import HarError
from har.logging import get_logger

if TYPE_CHECKING:
    import numpy as np

    from har.training.bundle import TrainedModel

log = get_logger(__name__)
DEFAULT_URI = "sqlite:///mlflow.db"
# Requirements logged with every model: explicit, so MLflow doesn't spend minutes inferring them.
TORCH_REQUIREMENTS = ["torch==2.13.0", "numpy==2.4.6"]
ONNX_REQUIREMENTS = ["onnxruntime==1.32.0", "onnx==1.23.2", "numpy==2.4.6"]
SKLEARN_REQUIREMENTS = ["scikit-learn==1.9.1", "skops==0.16.0", "torch==2.13.0", "numpy==2.4.6"]
# Client-side MLflow settings for every har process (environment variables, so an operator can still
# override them). Proxy multipart download off: a tracking server with S3 artifacts otherwise hands
# out presigned S3 URLs and clients download straight from S3, so the API and the workers would need
# network access to the bucket; through the server's proxy they need only the tracking URI.
MLFLOW_CLIENT_DEFAULTS = {"MLFLOW_ENABLE_TELEMETRY": "false",
                          "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}


def resolve_tracking_uri(configured: str | None = None) -> str:
    """The one tracking-URI rule: ``MLFLOW_TRACKING_URI`` from the environment wins over params
    ``tracking.uri``; a relative SQLite path is made absolute (relative to the working directory,
    the project), so a subprocess that changes directory still finds the same store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


def tracking_uri(p: Params) -> str:
    return resolve_tracking_uri(p.tracking.uri)


def mlflow_client_defaults() -> None:
    for key, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def client(p: Params) -> Any:
    """An MlflowClient for tracking and registry on the configured store."""
    from mlflow import MlflowClient

    mlflow_client_defaults()
    uri = tracking_uri(p)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


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


def open_run(p: Params, run_id: str) -> Any:
    """Re-open the MLflow run `har train` started (evaluate and export log to it)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from har.logging import redact

    setup_mlflow(p)
    try:
        return mlflow.start_run(run_id=run_id)
    except MlflowException as e:
        raise HarError(f"MLflow run {run_id} (from `har train`) is not in the tracking store "
                       f"{redact(tracking_uri(p))}; train and later stages must use the same "
                       f"MLFLOW_TRACKING_URI ({e.message})") from None


@contextmanager
def training_run(p: Params, checkpoint_dir: Path, *, resume: bool, tags: dict[str, str],
                 params: dict[str, Any], main: bool = True) -> Iterator[Any]:
    """The run `har train` logs to. With ``resume`` it is the interrupted run (its id is kept
    beside the checkpoints), so the per-epoch curves stay whole; params are logged once (MLflow
    params are immutable). Under `har train --nproc N` only rank 0 (``main``) has a run: the other
    ranks get None and never touch the store (one run, not N; one writer of the marker)."""
    if not main:
        yield None
        return
    import mlflow

    setup_mlflow(p)
    marker = checkpoint_dir / RUN_MARKER
    previous = marker.read_text().strip() if resume and marker.is_file() else None
    if not resume and marker.is_file():
        _close_abandoned(marker.read_text().strip())
    with (mlflow.start_run(run_id=previous) if previous else
          mlflow.start_run(run_name=f"train-{p.train.model}")) as run:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(run.info.run_id)
        mlflow.set_tags({"git_commit": git_commit(), **tags})
        if previous is None:
            mlflow.log_params(flatten(params))
        yield run


def _close_abandoned(run_id: str) -> None:
    """End as KILLED the run a killed `har train` left RUNNING (its id is still beside the
    checkpoints): a fresh start replaces it, and MLflow would otherwise show it running forever."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()  # the store setup_mlflow pointed MLflow at
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="KILLED")
            log.info("MLflow run %s of an interrupted `har train` ended as KILLED", run_id)
    except MlflowException:
        pass  # not in this store (another tracking URI): nothing of ours to close


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics(metrics, step=step)


def set_tags(tags: dict[str, str]) -> None:
    import mlflow

    mlflow.set_tags(tags)


def log_artifacts(paths: list[Path], folder: str) -> None:
    import mlflow

    for path in paths:
        mlflow.log_artifact(str(path), folder)


def log_trained_model(model: TrainedModel, model_dir: Path, X_example: np.ndarray) -> None:
    """The trained model in its own flavour (torch, or the classic pyfunc), with signature and
    pinned requirements, under ``model`` in the active run."""
    import mlflow
    from mlflow.models import infer_signature

    example = X_example[:2]
    signature = infer_signature(example, model.predict_proba(example))
    if model.is_deep:
        mlflow.pytorch.log_model(model.net, name="model", signature=signature, input_example=example,
                                 pip_requirements=TORCH_REQUIREMENTS)
    else:
        from har.training.pyfunc import ClassicPyfunc

        mlflow.pyfunc.log_model(name="model", python_model=ClassicPyfunc(),
                                artifacts={"model": str(model_dir / CLASSIC_MODEL_FILE)},
                                signature=signature, input_example=example,
                                pip_requirements=SKLEARN_REQUIREMENTS)


def log_onnx_model(path: Path, example: np.ndarray, probs: np.ndarray) -> str:
    """Log the ONNX file under ``onnx`` in the active run; returns its model URI. Any failure
    (the artifact store down, after MLflow's retries) is a HarError naming the store."""
    import mlflow
    import onnx
    from mlflow.models import infer_signature

    from har.logging import redact

    try:
        info = mlflow.onnx.log_model(onnx.load(str(path)), name="onnx",
                                     signature=infer_signature(example, probs), input_example=example,
                                     pip_requirements=ONNX_REQUIREMENTS)
    except Exception as err:  # MlflowException, HTTP and S3 errors after MLflow's retries
        text = str(err).splitlines()[0] if str(err) else repr(err)
        raise HarError(f"logging the ONNX model to MLflow ({redact(mlflow.get_tracking_uri())}) "
                       f"failed: {redact(text)}") from None
    return info.model_uri


def check_model_artifacts(model_uri: str, uri: str) -> None:
    """A version must never point at artifacts that are not in the store (an upload that failed
    while S3 was down): list them first, and refuse without a model.onnx."""
    from mlflow.artifacts import list_artifacts

    from har.logging import redact
    from har.registry.gate import RegistryError

    try:
        names = [a.path.rsplit("/", 1)[-1] for a in list_artifacts(artifact_uri=model_uri, tracking_uri=uri)]
    except Exception as err:  # MlflowException, HTTP and S3 errors alike
        raise RegistryError(f"{model_uri}: its artifacts cannot be listed in {redact(uri)} "
                            f"({redact(str(err).splitlines()[0]) if str(err) else type(err).__name__}); "
                            "nothing registered") from None
    if "model.onnx" not in names:
        raise RegistryError(f"{model_uri}: no model.onnx among its artifacts {names} in {redact(uri)}; "
                            "run `har export` again; nothing registered")


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


# ---------------------------------------------------------------------------------------------
# Hyperparameter search (har.tuning): one parent run per study, one nested run per trial. Trials may
# run in other processes or machines (Dask workers), so they use the client API with the parent's
# id rather than the fluent API's process-local run stack.


def study_run(p: Params, run_id: str | None, name: str, tags: dict[str, str]) -> str:
    """The parent run of a study: ``run_id`` if it is in this store (a resumed study), else a new
    run named ``name``; returns its id. The run stays open until ``end_run`` ends it."""
    from mlflow.exceptions import MlflowException

    exp_id = setup_mlflow(p)
    c = client(p)
    if run_id:
        try:
            c.get_run(run_id)
            c.update_run(run_id, status="RUNNING")
            return run_id
        except MlflowException:
            log.info("study run %s is not in %s: starting a new one", run_id, tracking_uri(p))
    run = c.create_run(exp_id, run_name=name, tags={"git_commit": git_commit(), **tags})
    return str(run.info.run_id)


def start_child_run(p: Params, parent_run_id: str, name: str, tags: dict[str, str],
                    params: dict[str, Any]) -> str:
    """A run nested under ``parent_run_id`` (shown under it in the MLflow UI); returns its id."""
    c = client(p)
    parent = c.get_run(parent_run_id)
    run = c.create_run(parent.info.experiment_id, run_name=name,
                       tags={"mlflow.parentRunId": parent_run_id, **tags})
    run_id = str(run.info.run_id)
    if params:
        c.log_batch(run_id, params=_params_batch(params))
    return run_id


def _params_batch(params: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in flatten(params).items()]


def log_run_metrics(p: Params, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    """Metrics of a run that is not the fluent API's active run (a trial, a study)."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client(p).log_batch(run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in metrics.items()])


def log_run_params(p: Params, run_id: str, params: dict[str, Any]) -> None:
    client(p).log_batch(run_id, params=_params_batch(params))


def set_run_tags(p: Params, run_id: str, tags: dict[str, str]) -> None:
    c = client(p)
    for key, value in tags.items():
        c.set_tag(run_id, key, value)


def log_run_artifacts(p: Params, run_id: str, paths: list[Path], folder: str) -> None:
    c = client(p)
    for path in paths:
        c.log_artifact(run_id, str(path), folder)


def end_run(p: Params, run_id: str, status: str = "FINISHED") -> None:
    """End a run: FINISHED, FAILED or KILLED (a pruned trial)."""
    client(p).set_terminated(run_id, status=status)
