"""The drift check: recent model inputs against the training reference; on drift it emits the
``har.drift.detected`` event, which the `har-retrain` deployment's trigger turns into a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from har.config import Params, load_params
from har.io import atomic_path
from har.monitoring.drift import drift_report
from har.monitoring.recent import load_recent
from har.monitoring.reference import load_reference

DRIFT_EVENT = "har.drift.detected"  # flows/deploy.py puts the retraining trigger on it


def model_resource_id(p: Params) -> str:
    """The event resource that stands for the served model (``har.model.<registry name>``)."""
    return f"har.model.{p.registry.model_name}"


@task(name="drift-report", cache_policy=NO_CACHE)
def compute_drift(params_path: str, recent: str | None, since_hours: float | None) -> dict[str, Any]:
    p = load_params(Path(params_path))
    m = p.monitor
    reference = load_reference(m.reference_path)
    source = Path(recent) if recent else p.serve.inference_log_dir
    frame = load_recent(source, p, since_hours)
    report = drift_report(reference, frame, m.method, m.threshold, m.min_drifted_channels)
    doc = {**report.to_dict(), "source": str(source), "reference": str(m.reference_path),
           "time": datetime.now(UTC).isoformat()}
    m.report_dir.mkdir(parents=True, exist_ok=True)
    path = m.report_dir / f"drift-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
    for target in (path, m.report_dir / "latest.json"):
        with atomic_path(target, suffix=".json") as tmp:
            tmp.write_text(json.dumps(doc, indent=2))
    create_markdown_artifact(report.to_markdown() + f"\n\nSource: `{source}`; report: `{path}`",
                             key="drift-report", description="Input drift against the training reference")
    if report.channels:
        create_table_artifact(report.table(), key="drift-channels",
                              description=f"{m.method.upper()} per channel (threshold {m.threshold})")
    doc["report_path"] = str(path)
    return doc


@flow(name="drift-check", description="PSI/KS of recent inputs vs. the training reference.")
def drift_check(params_path: str = "params.yaml", recent: str | None = None,
                since_hours: float | None = None, trigger_retrain: bool = True) -> dict[str, Any]:
    """Compute the drift report; when it drifts, emit ``har.drift.detected`` for the model.

    ``recent``: an inference-log folder (default ``serve.inference_log_dir``), a folder of
    recordings parquet files or one such file. Returns the report plus ``retrain_event_id``
    (None when nothing was emitted).
    """
    from prefect.events import emit_event

    log = get_run_logger()
    doc = compute_drift(params_path, recent, since_hours)
    doc["retrain_event_id"] = None
    if doc["drifted"] and trigger_retrain:
        p = load_params(Path(params_path))
        event = emit_event(
            event=DRIFT_EVENT,
            resource={"prefect.resource.id": model_resource_id(p),
                      "prefect.resource.name": p.registry.model_name},
            payload={k: doc[k] for k in ("n_drifted", "n_recent", "method", "report_path")})
        doc["retrain_event_id"] = str(event.id) if event is not None else None
        log.warning("drift in %d channels: emitted %s; the %s deployment's trigger retrains",
                    doc["n_drifted"], DRIFT_EVENT, p.pipeline.deployment)
    else:
        log.info("drifted=%s over %d recent windows", doc["drifted"], doc["n_recent"])
    return doc
