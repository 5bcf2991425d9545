"""The training pipeline as a Prefect flow: each task calls one stage function of ``har.stages``.

fetch → ingest → validate → preprocess → validate windows → drift reference → train → evaluate →
export → register → promote, then artifacts (metrics table, MLflow link, confusion matrix).

Caching is DVC-like: a task's cache key hashes the stage's input files (sha256, or size+mtime for
large files and folders), the params sections the stage reads, the upstream results it consumes
and the stage function's source. Results persist under ``.prefect-results/`` in the project, so an
unchanged stage is skipped on the next run. Outputs are checked too: if a stage's outputs are gone
the cache entry is refreshed (the stage runs again) instead of being trusted. register and promote
read the live registry and always run (register is idempotent: an already registered model is
returned, not registered again); the ``promotion_policy`` parameter decides whether promote may
move the champion.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from har import stages
from har.config import Params, load_params
from har.errors import ValidationFailed
from har.registry.gate import PromotionPolicy, policy_mode, promotion_line, registration_line

RESULTS_DIR = Path(".prefect-results")
CACHE_VERSION = "1"
LARGE_FILE_BYTES = 64 << 20  # above this, size + mtime stand in for the content hash
PROCESSED = ("windows.npz", "splits.json", "label_map.json", "normalizer.json")
STOP_AFTER = ("fetch", "ingest", "validate", "preprocess", "train", "evaluate", "export",
              "register", "promote")

# ---------------------------------------------------------------------------------------------
# Fingerprints and cache keys


_sha_cache: dict[tuple[str, int, int], str] = {}


def fingerprint(path: Path) -> str:
    """Content hash of a file (size+mtime above LARGE_FILE_BYTES), metadata hash of a folder."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                st = f.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()
    st = path.stat()
    if st.st_size > LARGE_FILE_BYTES:
        return f"meta:{st.st_size}:{st.st_mtime_ns}"
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _sha_cache[key] = "sha256:" + h.hexdigest()
    return _sha_cache[key]


def _section(p: Params, dotted: str) -> Any:
    node: Any = p.model_dump(mode="json", by_alias=True)
    for part in dotted.split("."):
        node = node[part]
    return node


@dataclass(frozen=True)
class StageSpec:
    """What a stage reads and writes, for its cache key and its output check."""

    params: tuple[str, ...]  # dotted params sections the stage reads
    inputs: Callable[[Params, dict[str, Any]], list[Path]] = lambda p, up: []
    # outputs known from params (checked before the run) …
    outputs: Callable[[Params], list[Path]] = lambda p: []
    # … and outputs named in the stage's result (checked after a cache hit)
    result_outputs: Callable[[Any], list[Path]] = lambda r: []
    env: tuple[str, ...] = ()  # environment variables that change the stage's behaviour


def _raw_folder(p: Params) -> Path:
    from har.data.registry import get_dataset

    return p.data.raw_dir / get_dataset(p.data.dataset).folder


def _processed(p: Params) -> list[Path]:
    return [p.preprocess.out_dir / n for n in PROCESSED]


def _gx_suites(p: Params) -> list[Path]:
    # The suites are built in code from params on every run (GX rewrites its JSON with fresh ids),
    # so the code that builds and runs them is the input, not the files under gx_dir.
    import har.validation.run
    import har.validation.suites

    return [Path(har.validation.suites.__file__), Path(har.validation.run.__file__)]


def _paths(result: Any, *keys: str) -> list[Path]:
    if not isinstance(result, dict):
        return []
    return [Path(result[k]) for k in keys if result.get(k)]


def _model_path(up: dict[str, Any]) -> list[Path]:
    return _paths(up.get("train"), "model_path")


def _stage(name: str) -> Callable[..., Any]:
    """The stage function, looked up at call time (stages may land after this module loads)."""
    if name == "reference":
        from har.monitoring.reference import write_reference_stats

        return write_reference_stats
    return getattr(stages, "validate" if name == "validate_windows" else name)


SPECS: dict[str, StageSpec] = {
    "fetch": StageSpec(("data.dataset", "data.raw_dir"), outputs=lambda p: [_raw_folder(p)]),
    "ingest": StageSpec(("data",), lambda p, up: [_raw_folder(p)],
                        outputs=lambda p: [p.data.interim_path]),
    "validate": StageSpec(("validate", "preprocess.classes", "data"),
                          lambda p, up: [p.data.interim_path, *_gx_suites(p)],
                          outputs=lambda p: [p.validate_.report_path]),
    "preprocess": StageSpec(("preprocess", "split"),
                            lambda p, up: [p.data.interim_path],
                            outputs=lambda p: [*_processed(p), p.preprocess.out_dir / "stats.json"]),
    "validate_windows": StageSpec(
        ("validate", "preprocess.classes"),
        lambda p, up: [*_processed(p), *_gx_suites(p)],
        outputs=lambda p: [p.validate_.report_path.with_name("validation_windows.json")]),
    "reference": StageSpec(("monitor.reference_path", "split.seed"),
                           lambda p, up: _processed(p)[:2],
                           outputs=lambda p: [p.monitor.reference_path]),
    "train": StageSpec(("train", "tracking", "preprocess", "split"), lambda p, up: _processed(p),
                       result_outputs=lambda r: _paths(r, "model_path"),
                       env=("MLFLOW_TRACKING_URI",)),
    "evaluate": StageSpec(("evaluate", "tracking", "preprocess.classes"),
                          lambda p, up: [*_model_path(up), *_processed(p)],
                          result_outputs=lambda r: _paths(r, "confusion_png"),
                          env=("MLFLOW_TRACKING_URI",)),
    "export": StageSpec(("export", "tracking"),
                        lambda p, up: [*_model_path(up), *_processed(p)],
                        outputs=lambda p: [p.export.path, p.export.report_path],
                        result_outputs=lambda r: _paths(r, "onnx_path"),
                        env=("MLFLOW_TRACKING_URI",)),
    # register and promote have no spec: they read the live registry (a version may have been
    # registered, promoted or deleted since), so they always run; register is idempotent.
}


def _source(name: str) -> str:
    try:
        return inspect.getsource(_stage(name))
    except (AttributeError, OSError, TypeError):
        return ""


def cache_key(p: Params, name: str, upstream: dict[str, Any] | None) -> str:
    """sha256 over the stage's inputs, params sections, upstream results, env and source."""
    spec = SPECS[name]
    up = upstream or {}
    doc = {
        "v": CACHE_VERSION,
        "stage": name,
        "source": hashlib.sha256(_source(name).encode()).hexdigest(),
        "params": {s: _section(p, s) for s in spec.params},
        "inputs": {str(path): fingerprint(path) for path in spec.inputs(p, up)},
        "upstream": up,
        "env": {k: os.environ.get(k) for k in spec.env},
    }
    return name + "-" + hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _task_cache_key(ctx: TaskRunContext, inputs: dict[str, Any]) -> str:
    return cache_key(inputs["p"], ctx.task.name, inputs.get("upstream"))


CACHED: dict[str, Any] = {"cache_policy": CacheKeyFnPolicy(cache_key_fn=_task_cache_key),
                          "persist_result": True}

# ---------------------------------------------------------------------------------------------
# Tasks: thin wrappers over har.stages (no logic here)


@task(name="fetch", **CACHED)
def fetch_task(p: Params, upstream: dict[str, Any] | None = None) -> str:
    return str(_stage("fetch")(p))


@task(name="ingest", **CACHED)
def ingest_task(p: Params, upstream: dict[str, Any] | None = None) -> str:
    return str(_stage("ingest")(p))


@task(name="validate", **CACHED)
def validate_task(p: Params, upstream: dict[str, Any] | None = None) -> str:
    return _stage("validate")(p, windows=False)


@task(name="preprocess", **CACHED)
def preprocess_task(p: Params, upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    return _stage("preprocess")(p)


@task(name="validate_windows", **CACHED)
def validate_windows_task(p: Params, upstream: dict[str, Any] | None = None) -> str:
    return _stage("validate")(p, windows=True)


@task(name="reference", **CACHED)
def reference_task(p: Params, upstream: dict[str, Any] | None = None) -> str:
    return str(_stage("reference")(p))


@task(name="train", **CACHED)
def train_task(p: Params, upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    return _stage("train")(p, show_progress=False)


@task(name="evaluate", **CACHED)
def evaluate_task(p: Params, upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    return _stage("evaluate")(p)


@task(name="export", **CACHED)
def export_task(p: Params, upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    return _stage("export")(p)


@task(name="register", cache_policy=NO_CACHE)  # reads the live registry: never cached
def register_task(p: Params, upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    return _stage("register")(p)


@task(name="promote", cache_policy=NO_CACHE)  # reads the live registry: never cached
def promote_task(p: Params, version: str | None = None, policy: str = "gate") -> dict[str, Any]:
    return _stage("promote")(p, version, policy)


# ---------------------------------------------------------------------------------------------
# Running tasks with the project's result storage, retries and the output check


@dataclass
class _Runner:
    p: Params
    use_cache: bool
    store: Path = field(default_factory=lambda: RESULTS_DIR.resolve())
    states: dict[str, str] = field(default_factory=dict)

    def run(self, t: Any, upstream: Any = None, *, io: bool = False, **kwargs: Any) -> Any:
        state = self.submit(t, upstream, io=io, **kwargs)
        return state.result()  # raises the stage's own error on failure

    def submit(self, t: Any, upstream: Any = None, *, io: bool = False, **kwargs: Any) -> Any:
        name = t.name
        spec = SPECS.get(name)
        opts: dict[str, Any] = {}
        if io:
            pl = self.p.pipeline
            opts["retries"] = pl.retries
            opts["retry_delay_seconds"] = (exponential_backoff(pl.retry_delay_s)
                                           if pl.retry_delay_s > 0 else 0)
        cached = self.use_cache and spec is not None
        if cached:
            gone = [o for o in spec.outputs(self.p) if not o.exists()]
            opts.update(result_storage=self.store, refresh_cache=bool(gone))
        else:
            opts.update(cache_policy=NO_CACHE, persist_result=False)
        state = t.with_options(**opts)(self.p, upstream, return_state=True, **kwargs)
        if cached and state.name == "Cached":
            gone = [o for o in spec.result_outputs(state.result()) if not o.exists()]
            if gone:  # the cached result names files that no longer exist: run it again
                get_run_logger().info("%s: outputs %s missing, running again", name, gone)
                opts["refresh_cache"] = True
                state = t.with_options(**opts)(self.p, upstream, return_state=True, **kwargs)
        self.states[name] = state.name
        return state


# ---------------------------------------------------------------------------------------------
# Artifacts


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def validation_artifact(p: Params, message: str, windows: bool) -> None:
    report = (p.validate_.report_path.with_name("validation_windows.json") if windows
              else p.validate_.report_path).with_suffix(".failed.json")
    lines = [f"# Validation failed ({'windows' if windows else 'recordings'})", "",
             "Nothing was trained, registered or promoted.", "", "```", message, "```"]
    if report.is_file():
        data = json.loads(report.read_text())
        lines += ["", f"{len(data.get('failures', []))} of {data.get('evaluated')} expectations failed "
                      f"(full report: `{report}`).", "",
                  "| suite | expectation | column | examples / observed |", "|---|---|---|---|"]
        for f in data.get("failures", []):
            seen = f.get("examples") or f.get("observed")
            lines.append(f"| {f.get('suite')} | {f.get('expectation')} | {f.get('column')} | "
                         f"{_md_escape(str(seen)[:200])} |")
    create_markdown_artifact("\n".join(lines), key="validation-report",
                             description="Great Expectations failures that stopped the pipeline")


def _tracking_uri(p: Params) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or p.tracking.uri


def mlflow_link(p: Params, run_id: str) -> tuple[str, str]:
    """(link, how-to-open text) for an MLflow run on the configured tracking server."""
    uri = _tracking_uri(p)
    try:
        from mlflow.tracking import MlflowClient

        exp_id = MlflowClient(tracking_uri=uri).get_run(run_id).info.experiment_id
    except Exception:  # a link artifact must not fail the pipeline
        exp_id = "0"
    fragment = f"#/experiments/{exp_id}/runs/{run_id}"
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/") + "/" + fragment, f"MLflow run {run_id} on {uri}"
    how = (f"MLflow run `{run_id}` (experiment {exp_id}) is in `{uri}`; open it with "
           f"`mlflow ui --backend-store-uri {uri}` and go to http://127.0.0.1:5000/{fragment}")
    return f"http://127.0.0.1:5000/{fragment}", how


def publish_artifacts(p: Params, summary: dict[str, Any]) -> None:
    m, promo = summary["metrics"], summary["promotion"]
    rows = [{"metric": k, "value": v} for k, v in m.items()]
    rows += [{"metric": "promoted", "value": promo.get("promoted")},
             {"metric": "version", "value": promo.get("version")},
             {"metric": "registration", "value": registration_line(summary["register"])},
             {"metric": "policy", "value": promo.get("policy")},
             {"metric": "verdict", "value": "pass" if promo.get("passed") else "reject"},
             {"metric": "champion_before", "value": promo.get("champion_before")},
             {"metric": "reasons", "value": "; ".join(promo.get("reasons") or []) or "-"}]
    create_table_artifact(rows, key="har-metrics",
                          description=f"Test metrics and the promotion decision ({p.train.model})")
    run_id = summary.get("run_id")
    if run_id:
        link, how = mlflow_link(p, run_id)
        create_link_artifact(link, link_text=f"MLflow run {run_id}", key="mlflow-run", description=how)
    png = summary.get("confusion_png")
    if png and Path(png).is_file():
        data = base64.b64encode(Path(png).read_bytes()).decode()
        # Prefect 3.8 image artifacts take a URL; a data URI keeps the image inside the artifact.
        create_image_artifact(f"data:image/png;base64,{data}", key="confusion-matrix",
                              description=f"Test-subject confusion matrix ({png})")


# ---------------------------------------------------------------------------------------------
# The flow


@flow(name="training-pipeline", description="HAPT data → validated windows → model → registry.")
def training_pipeline(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
                      use_cache: bool = True, stop_after: str | None = None,
                      promotion_policy: PromotionPolicy = "initial") -> dict[str, Any]:
    """Run every stage; ``stop_after`` ends early (e.g. ``"preprocess"`` for the data stages).

    ``promotion_policy`` (har.registry.gate.policy_mode): ``initial`` by default, so an ad-hoc run
    is an experiment that never moves an existing champion; the scheduled ``har-retrain``
    deployment passes ``gate``.
    """
    log = get_run_logger()
    if stop_after is not None and stop_after not in STOP_AFTER:
        raise ValueError(f"stop_after must be one of {STOP_AFTER}, got {stop_after!r}")
    policy_mode(promotion_policy, None)  # a bad policy fails before anything is trained
    p = load_params(Path(params_path), overrides)
    r = _Runner(p, use_cache)
    out: dict[str, Any] = {"states": r.states}

    def done(stage: str) -> bool:
        return stop_after == stage

    raw = r.run(fetch_task, io=True)
    if done("fetch"):
        return out
    interim = r.run(ingest_task, {"fetch": raw}, io=True)
    if done("ingest"):
        return out
    state = r.submit(validate_task, {"ingest": interim})
    if state.is_failed():
        err = state.result(raise_on_failure=False)
        validation_artifact(p, str(err), windows=False)
        raise err if isinstance(err, ValidationFailed) else ValidationFailed(str(err))
    out["validation"] = state.result()
    if done("validate"):
        return out
    out["preprocess"] = r.run(preprocess_task, {"validate": out["validation"]})
    state = r.submit(validate_windows_task, {"preprocess": out["preprocess"]})
    if state.is_failed():
        err = state.result(raise_on_failure=False)
        validation_artifact(p, str(err), windows=True)
        raise err if isinstance(err, ValidationFailed) else ValidationFailed(str(err))
    out["reference"] = r.run(reference_task, {"preprocess": out["preprocess"]})
    if done("preprocess"):
        return out

    trained = r.run(train_task, {"preprocess": out["preprocess"]})
    out["train"] = trained
    if done("train"):
        return out
    evaluated = r.run(evaluate_task, {"train": trained})
    out["evaluate"] = evaluated
    if done("evaluate"):
        return out
    exported = r.run(export_task, {"train": trained})
    out["export"] = exported
    if done("export"):
        return out
    registered = r.run(register_task, {"train": trained, "evaluate": evaluated, "export": exported})
    out["register"] = registered
    if done("register"):
        return out
    promo = r.run(promote_task, str(registered["version"]), policy=promotion_policy)
    out.update(
        promotion=promo,
        run_id=trained.get("run_id") or evaluated.get("run_id"),
        confusion_png=evaluated.get("confusion_png"),
        metrics={"accuracy": evaluated.get("accuracy"), "macro_f1": evaluated.get("macro_f1"),
                 "val_macro_f1": trained.get("val_macro_f1"),
                 "parity_max_abs_diff": exported.get("parity_max_abs_diff"),
                 "latency_p50_ms": exported.get("latency_p50_ms")},
    )
    publish_artifacts(p, out)
    log.info("metrics %s", out["metrics"])
    log.info("%s", registration_line(registered))
    log.info("%s %s", p.registry.model_name, promotion_line(promo))
    return out
