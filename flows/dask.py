"""The Dask cluster of the parallel flows (CV folds in flows/cv.py, tuning trials in flows/tuning.py).

``pipeline.dask_address`` names an existing cluster (a `dask scheduler` and its workers, on this
machine or anywhere the flow can reach); without it each run starts a LocalCluster of single-threaded
worker processes, one per requested worker, and closes it at the end. Nothing else in the code knows
which it is: the flows submit Prefect tasks and the DaskTaskRunner places them.
"""

from __future__ import annotations

import os

import dask
from prefect_dask import DaskTaskRunner

from har.config import Params


def machine_workers() -> int:
    """One worker per CPU this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def cluster_workers(address: str) -> int:
    """How many worker threads the cluster at ``address`` has right now."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))


def resolve_workers(p: Params, requested: int) -> int:
    """``requested`` workers, or with 0: the external cluster's size, else one per CPU here."""
    if requested > 0:
        return requested
    return cluster_workers(p.pipeline.dask_address) if p.pipeline.dask_address else machine_workers()


def dask_task_runner(p: Params, workers: int) -> DaskTaskRunner:
    """A DaskTaskRunner on pipeline.dask_address, else on a LocalCluster of ``workers`` processes."""
    if p.pipeline.dask_address:
        return DaskTaskRunner(address=p.pipeline.dask_address)
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536 so memory goes back to the OS
    # at once; training allocates and frees large buffers all the time, and with it a CV fold took
    # twice as long (measured: 55 s instead of 28 s for a classic fold). Keep glibc's default.
    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
    # processes, one thread each: the tasks are CPU-bound Python/torch work that holds the GIL
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def single_threaded() -> None:
    """Inside a task on a worker: one thread for torch, as the worker has one (no oversubscription
    when several workers share the machine)."""
    import torch

    torch.set_num_threads(1)
