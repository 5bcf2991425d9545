"""The deployments, declared once: scheduled retraining (`har-retrain`), the drift check, and the
hyperparameter search (`har-tune`, run on demand: no schedule).

Two ways to run them, from the same declaration (``deployment_specs``):

* ``har pipeline deploy`` registers them on the ``pipeline.work_pool`` process pool with the flow
  code taken from this checkout; a ``prefect worker`` (``har stack up``, compose) executes the runs;
* ``har pipeline serve`` is the single-process option: this process registers them and executes
  their runs itself until stopped.

Drift starts retraining through Prefect's own event machinery: the drift check emits
``har.drift.detected`` for the model's resource, and ``har-retrain`` carries a deployment trigger on
that event (an automation on the server), so no flow calls another deployment directly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from flows.drift import DRIFT_EVENT, model_resource_id
from har.config import load_params
from har.errors import HarError

DRIFT_DEPLOYMENT = "drift-check"
TUNE_DEPLOYMENT = "har-tune"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, when it runs, with which parameters, on which events."""

    module: str  # the flow's module in this package, e.g. "flows.training"
    function: str
    name: str
    cron: str | None  # None: runs only when started (UI, `prefect deployment run`, the API)
    timezone: str
    parameters: dict[str, Any]
    description: str
    tags: list[str]
    triggers: list[DeploymentEventTrigger] = field(default_factory=list)

    @property
    def schedules(self) -> list[Cron]:
        return [Cron(self.cron, timezone=self.timezone)] if self.cron else []

    @property
    def entrypoint(self) -> str:
        """``path/to/file.py:function`` relative to the project root, as a worker loads it."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"

    def flow(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.function)


def deployment_specs(params_path: str = "params.yaml") -> list[DeploymentSpec]:
    p = load_params(Path(params_path))
    pl = p.pipeline
    retrain_params = {"params_path": params_path, "promotion_policy": "gate"}
    return [
        DeploymentSpec(
            module="flows.training", function="training_pipeline", name=pl.deployment, cron=pl.cron,
            timezone=pl.timezone, parameters=retrain_params,
            description="Retrain, evaluate, export, register and promote (gated) on the configured "
                        f"schedule, and whenever the drift check emits {DRIFT_EVENT}.",
            tags=["har", "retrain"],
            triggers=[DeploymentEventTrigger(
                name="retrain-on-drift", expect={DRIFT_EVENT},
                match={"prefect.resource.id": model_resource_id(p)},
                parameters=retrain_params)]),
        DeploymentSpec(
            module="flows.drift", function="drift_check", name=DRIFT_DEPLOYMENT, cron=pl.drift_cron,
            timezone=pl.timezone, parameters={"params_path": params_path},
            description="Input drift of the serving log vs. the training reference; emits "
                        f"{DRIFT_EVENT} when it drifts.",
            tags=["har", "monitoring"]),
        DeploymentSpec(
            module="flows.tuning", function="tune_flow", name=TUNE_DEPLOYMENT, cron=None,
            timezone=pl.timezone, parameters={"params_path": params_path},
            description="Optuna search over train.* keys (params.yaml tune) on the validation subjects, "
                        "trials on Dask; writes tune.out_dir/best_params.yaml.",
            tags=["har", "tune"]),
    ]


def build_deployments(params_path: str = "params.yaml") -> list[Any]:
    """RunnerDeployments of ``deployment_specs`` for ``serve`` (this process runs the flows)."""
    return [spec.flow().to_deployment(name=spec.name, schedules=spec.schedules, parameters=spec.parameters,
                                      description=spec.description, tags=spec.tags, triggers=spec.triggers)
            for spec in deployment_specs(params_path)]


def serve_deployments(params_path: str = "params.yaml", limit: int | None = None) -> None:
    from prefect import serve

    serve(*build_deployments(params_path), limit=limit)


def deploy_to_work_pool(params_path: str = "params.yaml", source: Path | None = None) -> dict[str, str]:
    """Register the deployments on ``pipeline.work_pool`` with their code taken from ``source`` (the
    checkout holding flows/; default: the folder of ``params_path``). Workers run the flows there, so
    that is also where data, models and reports land. Returns name → deployment id."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.flows import Flow
    from prefect.utilities.asyncutils import run_coro_as_sync

    root = (source or Path(params_path).resolve().parent).resolve()
    pool = load_params(Path(params_path)).pipeline.work_pool
    specs = deployment_specs(params_path)
    missing = [s.entrypoint.split(":")[0] for s in specs if not (root / s.entrypoint.split(":")[0]).is_file()]
    if missing:
        raise HarError(f"{root}: no {missing}; deploy from the project checkout (the folder that holds "
                       "flows/ and params.yaml)")

    async def check_pool() -> None:
        async with get_client() as client:
            await client.read_work_pool(pool)

    try:
        run_coro_as_sync(check_pool())
    except ObjectNotFound:
        raise HarError(f"work pool {pool!r} (pipeline.work_pool) does not exist on the Prefect API; "
                       "start the stack (`har stack up`) or create it: "
                       f"prefect work-pool create {pool} --type process") from None
    ids = {}
    for spec in specs:
        flow = Flow.from_source(source=str(root), entrypoint=spec.entrypoint)
        # RunnerDeployment.apply directly: Flow.deploy also lists the pool's workers, a request that
        # prefect 3.8.8's client sends with `limit: null`, which its own server then rejects (422).
        deployment = flow.to_deployment(
            name=spec.name, schedules=spec.schedules, parameters=spec.parameters,
            description=spec.description, tags=spec.tags, triggers=spec.triggers)
        ids[f"{flow.name}/{spec.name}"] = str(deployment.apply(work_pool_name=pool))
    return ids


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--limit", type=int, default=None, help="max concurrent flow runs")
    args = ap.parse_args(argv)
    serve_deployments(args.params, args.limit)


if __name__ == "__main__":
    main()
