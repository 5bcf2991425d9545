"""The served model: an ONNX Runtime session plus the ``har.*`` metadata it was exported with.

``load_model(uri)`` accepts ``models:/<name>@<alias>``, ``models:/<name>/<version>`` (MLflow
registry) or a path to an ``.onnx`` file. ``ModelHolder`` keeps the current ``LoadedModel``
behind one attribute: a reload builds the new session completely and then rebinds that attribute
(an atomic reference swap in CPython), so requests in flight finish on the object they started
with and never see a half-loaded model.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from har.contracts import ONNX_INPUT, ONNX_META_QUANTIZATION, ONNX_OUTPUT, WindowSpec
from har.errors import HarError
from har.logging import redact
from har.tracking import resolve_tracking_uri

log = logging.getLogger(__name__)

INPUT_NAME = ONNX_INPUT
OUTPUT_NAME = ONNX_OUTPUT


class ModelLoadError(HarError):
    """The model URI cannot be resolved, downloaded or opened, or breaks the export contract."""


# What the served model expects (channel order, rate, window geometry, classes, transition grammar):
# the export contract's WindowSpec, read from the ONNX metadata by ``spec_from_metadata``.
ModelSpec = WindowSpec


def spec_from_metadata(meta: dict[str, str], source: str) -> WindowSpec:
    """The model's spec from its ONNX metadata; ModelLoadError naming ``source`` otherwise."""
    try:
        return WindowSpec.from_metadata(meta)
    except ValueError as err:
        raise ModelLoadError(f"{source}: {err}") from None


@dataclass
class LoadedModel:
    """An inference session ready to run, and where it came from."""

    session: Any  # onnxruntime.InferenceSession
    spec: ModelSpec
    source_uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    card: str | None = None  # the registered version's model card (its description in the registry)
    quantization: str = "none"  # or int8-static-qdq: `har export --quantize int8`
    fingerprint: str = ""  # what ModelHolder compares to decide whether a reload is needed
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """(n, window_len, C) float32 raw windows in ``spec.channels`` order → (n, K) probs."""
        x = np.ascontiguousarray(windows, dtype=np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    def info(self) -> dict[str, Any]:
        s = self.spec
        return {"name": self.name, "version": self.version, "model_type": s.model_type,
                "source_uri": self.source_uri, "run_id": self.run_id, "classes": s.classes,
                "channels": s.channels,
                "window": {"rate_hz": s.rate_hz, "window_len": s.window_len, "window_s": s.window_s,
                           "overlap": s.overlap, "step": s.step},
                "quantization": self.quantization, "metrics": self.metrics, "loaded_at": self.loaded_at}


def make_session(model: str | bytes | Path, intra_op_threads: int = 1) -> Any:
    """An ONNX Runtime CPU session tuned for small batches.

    One intra-op thread is fastest for batch 1 (no thread-pool hand-off, which costs more than
    the whole tiny graph); use more for large batches. Spinning is off so idle worker threads do
    not burn the cores the HTTP server needs.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, intra_op_threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    src = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def open_onnx(path: Path, source_uri: str, intra_op_threads: int = 1) -> LoadedModel:
    """Open an .onnx file in the serving contract; ModelLoadError on any breach."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: ONNX model file not found")
    try:
        # From the path, not bytes: MLflow saves weights as external data beside model.onnx,
        # which ONNX Runtime resolves relative to the model file.
        sess = make_session(path, intra_op_threads)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelLoadError(f"{path}: ONNX Runtime cannot open it: {err}") from None
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    spec = spec_from_metadata(meta, str(path))
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
        raise ModelLoadError(f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got "
                             f"{[i.name for i in inputs]} → {[o.name for o in outputs]}")
    shape = inputs[0].shape
    expected = (spec.window_len, len(spec.channels))
    # Symbolic dims come back as strings (or None); only concrete ones can contradict the metadata.
    if len(shape) != 3 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected,
                                                                            strict=True)):
        raise ModelLoadError(f"{path}: input shape {shape} disagrees with metadata "
                             f"(window_len={spec.window_len}, channels={len(spec.channels)})")
    st = path.stat()
    return LoadedModel(session=sess, spec=spec, source_uri=source_uri,
                       quantization=meta.get(ONNX_META_QUANTIZATION, "none"),
                       fingerprint=f"file:{st.st_mtime_ns}:{st.st_size}")


@dataclass(frozen=True)
class RegistryRef:
    name: str
    alias: str | None = None
    version: str | None = None


def parse_model_uri(uri: str) -> RegistryRef | Path:
    """``models:/name@alias`` / ``models:/name/version`` → RegistryRef; anything else is a path."""
    if not uri.startswith("models:/"):
        return Path(uri)
    rest = uri[len("models:/"):].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return RegistryRef(name=name, alias=alias)
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return RegistryRef(name=name, version=version)
    raise ModelLoadError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")


def _client(tracking_uri: str) -> Any:
    from har.tracking import mlflow_client_defaults

    mlflow_client_defaults()
    # MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) would hold one reload poll for
    # minutes while the tracking server is down; a poll is retried on the next tick anyway.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    # A tqdm bar per download would spam the server log on every reload.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_version(ref: RegistryRef, tracking_uri: str) -> Any:
    """The registry's ModelVersion for ``ref`` (cheap: one query; used by the reload poll)."""
    client = _client(tracking_uri)
    try:
        if ref.alias is not None:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, str(ref.version))
    except Exception as err:  # MlflowException and connection errors alike
        want = f"@{ref.alias}" if ref.alias else f"/{ref.version}"
        raise ModelLoadError(f"models:/{ref.name}{want}: not resolvable in {tracking_uri}: {err}") from None


def _run_metrics(client: Any, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    try:
        metrics = client.get_run(run_id).data.metrics
    except Exception:  # metrics are informative only; a missing run must not block serving
        log.warning("no MLflow run %s for the model version; serving without metrics", run_id)
        return {}
    return {k: float(v) for k, v in metrics.items() if k.startswith("test_")}


def load_model(uri: str, tracking_uri: str | None = None, intra_op_threads: int = 1) -> LoadedModel:
    """Resolve ``uri`` (registry alias/version or .onnx path), download and open it."""
    target = parse_model_uri(uri)
    if isinstance(target, Path):
        return open_onnx(target, uri, intra_op_threads)
    tracking_uri = resolve_tracking_uri(tracking_uri)
    mv = resolve_version(target, tracking_uri)
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix="har-serve-"))
    try:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{target.name}/{mv.version}", dst_path=str(tmp),
                tracking_uri=tracking_uri, registry_uri=tracking_uri))
        except Exception as err:
            raise ModelLoadError(f"{uri}: version {mv.version} could not be downloaded: {err}") from None
        found = ([local] if local.is_file()
                 else sorted(local.rglob("model.onnx")) or sorted(local.rglob("*.onnx")))
        if not found:
            raise ModelLoadError(f"{uri}: version {mv.version} has no model.onnx in its artifacts")
        # Initializers are in memory (or mapped, which survives unlinking on POSIX) once the
        # session exists, so the download folder can go right away.
        loaded = open_onnx(found[0], uri, intra_op_threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loaded.name, loaded.version, loaded.run_id = target.name, str(mv.version), mv.run_id
    loaded.metrics = _run_metrics(_client(tracking_uri), mv.run_id)
    loaded.card = mv.description or None
    loaded.fingerprint = f"registry:{target.name}:{mv.version}"
    return loaded


def current_fingerprint(uri: str, tracking_uri: str | None = None) -> str:
    """What ``uri`` points at now, without loading it (a registry version or a file's mtime/size)."""
    target = parse_model_uri(uri)
    if isinstance(target, Path):
        if not target.is_file():
            raise ModelLoadError(f"{target}: ONNX model file not found")
        st = target.stat()
        return f"file:{st.st_mtime_ns}:{st.st_size}"
    mv = resolve_version(target, resolve_tracking_uri(tracking_uri))
    return f"registry:{target.name}:{mv.version}"


class ModelHolder:
    """The current model behind one reference; ``refresh()`` reloads only when the target moved."""

    def __init__(self, uri: str, tracking_uri: str | None = None, intra_op_threads: int = 1) -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri
        self.intra_op_threads = intra_op_threads
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()  # one reload at a time; readers never take it

    def refresh(self, force: bool = False) -> bool:
        """Load the model if the alias/file moved (or nothing is loaded); True if swapped.

        On failure the previous model keeps serving and ``last_error`` says why.
        """
        with self._lock:
            try:
                if (not force and self.current is not None and current_fingerprint(
                        self.uri, self.tracking_uri) == self.current.fingerprint):
                    self.last_error = None
                    return False
                new = load_model(self.uri, self.tracking_uri, self.intra_op_threads)
            except ModelLoadError as err:
                # the URI may carry credentials (MLFLOW_TRACKING_URI=https://user:token@…): this
                # text reaches /readyz, the reload endpoint and 503 bodies, so it is redacted here
                self.last_error = redact(str(err))
                log.error("model load failed: %s", self.last_error)
                return False
            old = self.current
            self.current = new  # the swap: in-flight requests hold their own reference to `old`
            self.last_error = None
            log.info("serving %s (version %s, was %s)", self.uri, new.version,
                     old.version if old else None)
            return True
