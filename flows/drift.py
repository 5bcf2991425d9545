"""The drift check: recent model inputs against the training reference; retrain when drifted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from har.config import load_params
from har.io import atomic_path
from har.monitoring.drift import drift_report
from har.monitoring.recent import load_recent
from har.monitoring.reference import load_reference

TRAINING_FLOW = "training-pipeline"  # flows/training.py: @flow(name=...)


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
                since_hours: float | None = None, trigger_retrain: bool = True,
                deployment: str | None = None) -> dict[str, Any]:
    """Compute the drift report; when it drifts, start a run of the retraining deployment.

    ``recent``: an inference-log folder (default ``serve.inference_log_dir``), a folder of
    recordings parquet files or one such file. Returns the report plus ``retrain_flow_run_id``.
    """
    log = get_run_logger()
    doc = compute_drift(params_path, recent, since_hours)
    doc["retrain_flow_run_id"] = None
    if doc["drifted"] and trigger_retrain:
        from prefect.deployments import run_deployment

        name = deployment or f"{TRAINING_FLOW}/{load_params(Path(params_path)).pipeline.deployment}"
        # timeout=0: schedule the run and return; a worker or `har pipeline serve` executes it.
        run = run_deployment(name=name, timeout=0, tags=["drift-retrain"])
        doc["retrain_flow_run_id"] = str(run.id)
        log.warning("drift in %d channels: started %s (flow run %s)", doc["n_drifted"], name, run.id)
    else:
        log.info("drifted=%s over %d recent windows", doc["drifted"], doc["n_recent"])
    return doc
