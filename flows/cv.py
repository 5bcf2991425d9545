"""`har evaluate --cv` on Dask: the subject k-fold protocol with one Prefect task per (model, fold).

The protocol, the fold plan and the table are har's (``har.stages.model.evaluate_cv``,
``har.evaluation.cv``); this flow only places the folds: each is a task on the DaskTaskRunner of
flows/dask.py (pipeline.dask_address, else a LocalCluster), retried if it fails or its worker dies.
A fold is a pure function of its inputs, so the table equals the serial run's for the deterministic
models. Progress shows as the ``cv-progress`` artifact; the table as the ``cv-table`` artifact.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

import flows  # noqa: F401 - environment and har logger set-up, also when a worker loads this file as a script
from flows.dask import dask_task_runner, resolve_workers, single_threaded
from flows.progress import fold_reporter
from har.config import Params, load_params
from har.evaluation.cv import FoldCallback, FoldSplit, run_fold
from har.preprocess.windows import Windows
from har.stages.model import FoldExecutor, cv_context, cv_windows, evaluate_cv


@functools.lru_cache(maxsize=2)
def _windows(p_json: str, mtime: float) -> Windows:
    """The protocol's windows, built once per worker process (keyed by the params and the
    recordings file's mtime, so a changed file is re-read)."""
    return cv_windows(Params.model_validate_json(p_json))


def _with_absolute_paths(p: Params) -> Params:
    """Workers may run in another directory (an external cluster): give them absolute paths."""
    p = p.model_copy(deep=True)
    p.data.interim_path = p.data.interim_path.resolve()
    return p


@task(name="cv-fold", cache_policy=NO_CACHE)
def cv_fold(p: Params, model: str, split: FoldSplit) -> dict[str, Any]:
    """One (model, fold): train on its training subjects, score its test subjects."""
    from threadpoolctl import threadpool_limits

    single_threaded()
    ev = p.evaluate
    tp = p.train.model_copy(update={"num_threads": 1})
    w = _windows(p.model_dump_json(), p.data.interim_path.stat().st_mtime)
    with threadpool_limits(limits=1):
        return run_fold(w, p.preprocess.classes, model, tp, split, window_s=ev.cv_window_s,
                        overlap=ev.cv_overlap, epochs=ev.cv_epochs, context=cv_context(p))


def _executor(p: Params) -> FoldExecutor:
    retries, delay = p.pipeline.retries, p.pipeline.retry_delay_s

    def run(jobs: list[tuple[str, FoldSplit]], on_fold: FoldCallback) -> list[dict[str, Any]]:
        futures = [cv_fold.with_options(task_run_name=f"{m}-fold-{s.fold}", retries=retries,
                                        retry_delay_seconds=delay).submit(p, m, s) for m, s in jobs]
        index = {id(f): i for i, f in enumerate(futures)}
        rows: list[dict[str, Any]] = [{} for _ in jobs]
        for fut in as_completed(futures):
            row = fut.result()
            rows[index[id(fut)]] = row
            on_fold(row)
        return rows

    return run


@flow(name="cv-protocol", description="The subject k-fold protocol, one task per (model, fold) on Dask.")
def cv_protocol(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
                models: list[str] | None = None) -> dict[str, Any]:
    p = _with_absolute_paths(load_params(Path(params_path), overrides))
    models = models or list(p.evaluate.cv_models)
    report, progress = fold_reporter(p.evaluate.cv_folds, models)
    out = evaluate_cv(p, models=models, show_progress=False, on_fold=progress, executor=_executor(p))
    report.finish("table in " + out["paths"]["markdown"])
    create_markdown_artifact(out["table"], key="cv-table",
                             description=f"{p.evaluate.cv_folds}-fold subject protocol")
    return out


def run_cv(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
           models: list[str] | None = None) -> dict[str, Any]:
    """The flow on pipeline.dask_address, or on a LocalCluster of evaluate.cv_workers workers."""
    p = load_params(Path(params_path), overrides)
    runner = dask_task_runner(p, resolve_workers(p, p.evaluate.cv_workers))
    return cv_protocol.with_options(task_runner=runner)(params_path=params_path, overrides=overrides,
                                                         models=models)
