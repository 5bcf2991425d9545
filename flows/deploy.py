"""Serve the two deployments: scheduled retraining (`har-retrain`) and the drift check.

``python -m flows.deploy [--params params.yaml]`` or ``har pipeline serve``. The process registers
both deployments with the Prefect API (PREFECT_API_URL, e.g. a `prefect server start`), then polls
for their scheduled and UI-triggered runs and executes them until stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prefect.schedules import Cron

from har.config import load_params

DRIFT_DEPLOYMENT = "drift-check"


def build_deployments(params_path: str = "params.yaml") -> list[Any]:
    """RunnerDeployments for training-pipeline/<pipeline.deployment> and drift-check/drift-check."""
    from flows.drift import drift_check
    from flows.training import training_pipeline

    pl = load_params(Path(params_path)).pipeline
    retrain = training_pipeline.to_deployment(
        name=pl.deployment,
        schedules=[Cron(pl.cron, timezone=pl.timezone)],
        # the schedule is the one automatic path allowed to move the champion (gated)
        parameters={"params_path": params_path, "promotion_policy": "gate"},
        description="Retrain, evaluate, export, register and promote on the configured schedule.",
        tags=["har", "retrain"],
    )
    drift = drift_check.to_deployment(
        name=DRIFT_DEPLOYMENT,
        schedules=[Cron(pl.drift_cron, timezone=pl.timezone)],
        parameters={"params_path": params_path},
        description="Input drift of the serving log vs. the training reference; retrains on drift.",
        tags=["har", "monitoring"],
    )
    return [retrain, drift]


def serve_deployments(params_path: str = "params.yaml", limit: int | None = None) -> None:
    from prefect import serve

    serve(*build_deployments(params_path), limit=limit)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--limit", type=int, default=None, help="max concurrent flow runs")
    args = ap.parse_args(argv)
    serve_deployments(args.params, args.limit)


if __name__ == "__main__":
    main()
