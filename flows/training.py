"""The training pipeline as a Prefect flow, derived from dvc.yaml: one task per stage, in the order
dvc.yaml declares them, each calling the stage function of the same name (har.stages.STAGES).

Caching follows DVC (flows/cache.py): a task's key is its stage's deps, params and command, results
persist under ``.prefect-results/`` in the project, and a hit is trusted only while the stage's
outputs still exist. After the stages: artifacts (metrics table, MLflow link, confusion matrix).
"""

from __future__ import annotations

import base64
import json
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
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from flows.cache import stage_policy
from flows.progress import epoch_reporter
from har.config import Params, PromotionPolicy, load_params
from har.errors import ValidationFailed
from har.logging import redact
from har.models import get_model
from har.pipeline import Stage, stages_until
from har.registry.gate import registration_line
from har.stages import STAGES
from har.tracking import tracking_uri

RESULTS_DIR = Path(".prefect-results")
# Orchestration choices that dvc.yaml has no words for:
RETRIED = {"fetch", "ingest"}  # they touch the network and the disk: retried with backoff
UNCACHED = {"register"}  # it reads and writes the live registry (idempotent, so re-running is safe)


@task
def run_stage(p: Params, stage: str) -> dict[str, Any]:
    """One dvc.yaml stage: the function its `har` command runs (train also reports its epochs as
    the progress artifact ``training-progress``)."""
    if stage == "train":
        # the classic model fits in one step: one "epoch"
        total = p.train.epochs if get_model(p.train.model).kind == "deep" else 1
        report, on_epoch = epoch_reporter(total, p.train.model)
        out = STAGES[stage](p, on_epoch=on_epoch)
        report.finish(f"best val macro-F1 {out['val_macro_f1']:.3f} at epoch {out['best_epoch']}")
        return out
    return STAGES[stage](p)


@dataclass
class _Runner:
    p: Params
    use_cache: bool
    store: Path = field(default_factory=lambda: RESULTS_DIR.resolve())
    states: dict[str, str] = field(default_factory=dict)

    def submit(self, stage: Stage) -> Any:
        opts: dict[str, Any] = {"name": stage.name, "task_run_name": stage.name}
        if stage.name in RETRIED:
            pl = self.p.pipeline
            opts["retries"] = pl.retries
            opts["retry_delay_seconds"] = (exponential_backoff(pl.retry_delay_s)
                                           if pl.retry_delay_s > 0 else 0)
        if self.use_cache and stage.name not in UNCACHED:
            # a cache hit is trusted only while everything the stage wrote is still there
            gone = [o for o in stage.outs if not o.exists()]
            opts.update(cache_policy=stage_policy(stage), persist_result=True, result_storage=self.store,
                        refresh_cache=bool(gone))
        else:
            opts.update(cache_policy=NO_CACHE, persist_result=False)
        state = run_stage.with_options(**opts)(self.p, stage.name, return_state=True)
        self.states[stage.name] = state.name
        return state


def validation_artifact(err: ValidationFailed) -> None:
    """The failed expectations as a markdown artifact (the stage wrote the full report)."""
    lines = ["# Validation failed", "", "Nothing was trained, registered or promoted.", "", "```", str(err),
             "```"]
    if err.report is not None and err.report.is_file():
        data = json.loads(err.report.read_text())
        lines += ["", f"{len(data.get('failures', []))} of {data.get('evaluated')} expectations failed "
                      f"(full report: `{err.report}`).", "",
                  "| suite | expectation | column | examples / observed |", "|---|---|---|---|"]
        for f in data.get("failures", []):
            seen = str(f.get("examples") or f.get("observed"))[:200].replace("|", "\\|")
            lines.append(f"| {f.get('suite')} | {f.get('expectation')} | {f.get('column')} | {seen} |")
    create_markdown_artifact("\n".join(lines), key="validation-report",
                             description="Great Expectations failures that stopped the pipeline")


def mlflow_link(p: Params, run_id: str) -> tuple[str, str]:
    """(link, how-to-open text) for an MLflow run on the configured tracking server."""
    uri = tracking_uri(p)
    try:
        from mlflow.tracking import MlflowClient

        exp_id = MlflowClient(tracking_uri=uri).get_run(run_id).info.experiment_id
    except Exception:  # a link artifact must not fail the pipeline
        exp_id = "0"
    fragment = f"#/experiments/{exp_id}/runs/{run_id}"
    shown = redact(uri)
    if uri.startswith(("http://", "https://")):
        return shown.rstrip("/") + "/" + fragment, f"MLflow run {run_id} on {shown}"
    how = (f"MLflow run `{run_id}` (experiment {exp_id}) is in `{shown}`; open it with "
           f"`mlflow ui --backend-store-uri {shown}` and go to http://127.0.0.1:5000/{fragment}")
    return f"http://127.0.0.1:5000/{fragment}", how


def publish_artifacts(p: Params, results: dict[str, Any]) -> dict[str, Any]:
    """Metrics table, MLflow link and confusion matrix of a complete run; returns the metrics."""
    trained, evaluated, exported = results["train"], results["evaluate"], results["export"]
    registered = results["register"]
    promo = registered["promotion"]
    metrics = {"accuracy": evaluated.get("accuracy"), "macro_f1": evaluated.get("macro_f1"),
               "val_macro_f1": trained.get("val_macro_f1"),
               "parity_max_abs_diff": exported.get("parity_max_abs_diff"),
               "latency_p50_ms": exported.get("latency_p50_ms")}
    rows = [{"metric": k, "value": v} for k, v in metrics.items()]
    rows += [{"metric": "promoted", "value": promo.get("promoted")},
             {"metric": "version", "value": promo.get("version")},
             {"metric": "registration", "value": registration_line(registered)},
             {"metric": "policy", "value": promo.get("policy")},
             {"metric": "verdict", "value": "pass" if promo.get("passed") else "reject"},
             {"metric": "champion_before", "value": promo.get("champion_before")},
             {"metric": "reasons", "value": "; ".join(promo.get("reasons") or []) or "-"}]
    create_table_artifact(rows, key="har-metrics",
                          description=f"Test metrics and the promotion decision ({p.train.model})")
    run_id = trained.get("run_id")
    if run_id:
        link, how = mlflow_link(p, run_id)
        create_link_artifact(link, link_text=f"MLflow run {run_id}", key="mlflow-run", description=how)
    png = evaluated.get("confusion_png")
    if png and Path(png).is_file():
        data = base64.b64encode(Path(png).read_bytes()).decode()
        # Prefect 3.8 image artifacts take a URL; a data URI keeps the image inside the artifact.
        create_image_artifact(f"data:image/png;base64,{data}", key="confusion-matrix",
                              description=f"Test-subject confusion matrix ({png})")
    return metrics


@flow(name="training-pipeline", description="Raw recordings → validated windows → model → registry.")
def training_pipeline(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
                      use_cache: bool = True, stop_after: str | None = None,
                      promotion_policy: PromotionPolicy | None = None) -> dict[str, Any]:
    """Every dvc.yaml stage in order; ``stop_after`` ends early (e.g. ``"validate_windows"`` for the
    data stages). ``overrides`` are dotted params keys; ``promotion_policy`` is
    ``registry.promotion_policy`` (``initial`` in params.yaml: an ad-hoc run is an experiment that
    never moves an existing champion; the scheduled ``har-retrain`` deployment passes ``gate``)."""
    log = get_run_logger()
    overrides = dict(overrides or {})
    if promotion_policy is not None:
        overrides["registry.promotion_policy"] = promotion_policy
    p = load_params(Path(params_path), overrides)
    runner = _Runner(p, use_cache)
    results: dict[str, Any] = {"states": runner.states}
    for stage in stages_until(p, stop_after):
        state = runner.submit(stage)
        if state.is_failed():
            err = state.result(raise_on_failure=False)
            if isinstance(err, ValidationFailed):
                validation_artifact(err)
            raise err if isinstance(err, BaseException) else RuntimeError(f"{stage.name}: {state.message}")
        results[stage.name] = state.result()
    if "register" in results:
        results["metrics"] = publish_artifacts(p, results)
        results["promotion"] = results["register"]["promotion"]
        log.info("metrics %s", results["metrics"])
    return results
