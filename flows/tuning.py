"""`har tune` on Dask: parallel Optuna trials, each worker drawing from the one shared study.

``har.stages.tune`` does the work (prepare the study and its MLflow parent run, run trials, write
the outputs); this flow only fans ``run_trials`` out as one Prefect task per Dask worker (flows/dask.py:
pipeline.dask_address, else a LocalCluster). The workers share the trial budget through the study's
storage (tune.storage), which is Optuna's own way to scale out: a `har tune` started on another
machine against the same storage joins the same study.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from flows.dask import dask_task_runner, resolve_workers, single_threaded
from har import tracking
from har.config import load_params
from har.stages.tune import TuneSetup, finish, prepare, run_trials


@task(name="tune-trials", cache_policy=NO_CACHE)
def trial_worker(setup: TuneSetup, worker: int) -> int:
    """Trials on one worker until the study's budget is used; returns how many it ran."""
    single_threaded()
    return run_trials(setup, worker=worker, threads=1)


@flow(name="tune-trials", description="Optuna trials on Dask workers, one task per worker.")
def parallel_trials(setup: TuneSetup, workers: int) -> int:
    futures = [trial_worker.with_options(task_run_name=f"worker-{i}").submit(setup, i)
               for i in range(workers)]
    return sum(f.result() for f in futures)


@flow(name="tune", description="Hyperparameter search with Optuna on the validation subjects.")
def tune_flow(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Prepare the study, run its trials on Dask (tune.workers, pipeline.dask_address), write
    best_params.yaml and the plots; the best values as a markdown artifact."""
    log = get_run_logger()
    started = time.perf_counter()
    p = load_params(Path(params_path), overrides)
    workers = resolve_workers(p, p.tune.workers)
    setup = prepare(p)
    log.info("study %s: %d trials on %d Dask workers", setup.study, p.tune.n_trials, workers)
    try:
        parallel_trials.with_options(task_runner=dask_task_runner(p, workers))(setup, workers)
    except BaseException:
        tracking.end_run(setup.params, setup.parent_run_id, "KILLED")
        raise
    out = finish(setup, time.perf_counter() - started)
    lines = [f"# Study `{setup.study}`", "", out["summary"], "", "| key | best value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in out["best_params"].items()]
    create_markdown_artifact("\n".join(lines), key="tune-best-params",
                             description=f"Best trial of {setup.study} (validation macro-F1)")
    return out
