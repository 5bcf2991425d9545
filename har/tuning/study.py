"""Optuna mechanics: samplers, pruners, the study in its storage, the trial budget, and what a
finished study leaves behind (best parameters in params.yaml's dotted form, a summary, plots).

Scale-out is Optuna's own: every process that opens the same study name in the same storage (SQLite
by default, the stack's PostgreSQL, any SQLAlchemy URL) draws its trials from one shared history, so
trials started by several processes or machines (Dask workers, or `har tune` run twice) add up to
one study. A trial killed with its process is failed by the storage's heartbeat, so a restarted
`har tune` resumes the study where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from har.config import Distribution
from har.errors import ConfigError, HarError
from har.io import atomic_path, write_json
from har.logging import get_logger, redact
from har.tuning.space import grid

log = get_logger(__name__)
# A trial whose process died stops sending heartbeats; after the grace period the next trial to
# start marks it FAIL (Optuna's fail_stale_trials), so a restarted study never waits on it.
HEARTBEAT_S = 10
GRACE_S = 30
PARENT_RUN_ATTR = "mlflow_parent_run_id"
BEST_PARAMS_FILE = "best_params.yaml"
SUMMARY_FILE = "study.json"
TRIALS_FILE = "trials.csv"


class TrialDiverged(HarError):
    """A trial's training loss became NaN or infinite: the trial fails, the study goes on."""


def study_name(model: str, space: dict[str, Distribution], sampler: str, fixed: dict[str, Any],
               data_digest: str) -> str:
    """``<model>-<digest>``: the same setup (space, sampler, fixed train settings, data) resumes its
    own study; a changed one starts a new study instead of mixing incomparable trials."""
    doc = {"model": model, "space": {k: d.model_dump() for k, d in space.items()}, "sampler": sampler,
           "fixed": fixed, "data": data_digest}
    return f"{model}-{hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:10]}"


def suggest(trial: Any, key: str, dist: Distribution) -> Any:
    """The trial's value for one dimension (Optuna records it under the dotted key)."""
    if dist.choices is not None:
        return trial.suggest_categorical(key, dist.choices)
    if dist.is_int:
        return trial.suggest_int(key, int(dist.low), int(dist.high), step=int(dist.step or 1), log=dist.log)
    return trial.suggest_float(key, float(dist.low), float(dist.high), log=dist.log,
                               step=float(dist.step) if dist.step is not None else None)


def make_sampler(kind: str, space: dict[str, Distribution], seed: int, model: str = "") -> Any:
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler(grid(space, model), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # multivariate TPE models the dimensions jointly (lr and batch size interact)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)


def make_pruner(kind: str, epochs: int) -> Any:
    """Pruners judge each epoch's validation macro-F1 against other trials' at the same epoch."""
    import optuna

    if kind == "median":
        # the first epochs of a one-cycle schedule say little: no pruning before a quarter of the run
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 4))
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 8), max_resource=epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def absolute_storage(url: str) -> str:
    """A relative SQLite path made absolute (as the tracking URI's: the project's file), so a worker
    in another directory opens the same database."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{Path(url.removeprefix('sqlite:///')).resolve()}"
    return url


def storage(url: str) -> Any:
    """Optuna's RDB storage on ``url`` with heartbeats; ConfigError naming tune.storage."""
    import optuna
    from sqlalchemy.exc import ArgumentError, OperationalError

    url = absolute_storage(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                              engine_kwargs=_engine_kwargs(url))
    except (ArgumentError, OperationalError, ModuleNotFoundError, ValueError) as err:
        raise ConfigError(f"tune.storage: cannot open {redact(url)}: "
                          f"{redact(str(err).splitlines()[0])}") from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    # several processes write one SQLite file: wait for its lock instead of failing at once
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}


def open_study(name: str, storage_url: str, sampler: Any, pruner: Any) -> Any:
    """Create the study, or load it when it exists (a resumed or parallel run)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # har logs one line per trial itself
    return optuna.create_study(study_name=name, storage=storage(storage_url), sampler=sampler,
                               pruner=pruner, direction="maximize", load_if_exists=True)


def finished(study: Any) -> int:
    """Trials that used up budget: complete, pruned or failed (a diverged trial counts)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                         TrialState.FAIL)))


def optimize(study: Any, objective: Callable[[Any], float], n_trials: int,
             timeout_s: float | None) -> int:
    """Run trials until the study holds ``n_trials`` finished ones (counted in the storage, so
    parallel workers share the budget) or no trial may start any more (``timeout_s``); returns how
    many this call ran. A diverged trial is failed and the study goes on."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    before = len(study.get_trials(deepcopy=False))
    if finished(study) >= n_trials:
        return 0
    stop = MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=n_trials, timeout=timeout_s, callbacks=[stop],
                       catch=(TrialDiverged,), gc_after_trial=True)
    return len(study.get_trials(deepcopy=False)) - before


def best_params(study: Any) -> dict[str, Any]:
    """The best trial's values, keyed by dotted params keys (ConfigError-free: they were validated
    when the trial ran); empty when no trial completed."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return {}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in study.best_trial.params.items()}


def summary(study: Any) -> dict[str, Any]:
    from optuna.trial import TrialState

    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    best = best_params(study)
    return {"study": study.study_name, "trials": counts, "n_finished": finished(study),
            "best_value": study.best_value if best else None,
            "best_trial": study.best_trial.number if best else None, "best_params": best}


def write_best_params(path: Path, params: dict[str, Any], value: float | None, name: str) -> Path:
    """``best_params.yaml``: dotted params keys, for `har train --set-file` or `dvc exp run -S`."""
    import yaml

    header = (f"# Best trial of study {name} (validation macro-F1 {value:.4f}).\n"
              f"# har train --set-file {path}    or    dvc exp run "
              + " ".join(f"-S '{k}={v}'" for k, v in params.items()) + "\n") if params else \
        f"# Study {name}: no trial completed yet.\n"
    with atomic_path(path, ".yaml") as tmp:
        tmp.write_text(header + (yaml.safe_dump(params, sort_keys=True) if params else "{}\n"))
    return path


def write_outputs(study: Any, out_dir: Path) -> dict[str, Path]:
    """best_params.yaml, study.json (DVC metrics), trials.csv and the study's plots (PNG)."""
    doc = summary(study)
    paths = {"best_params": write_best_params(out_dir / BEST_PARAMS_FILE, doc["best_params"],
                                              doc["best_value"], study.study_name),
             "summary": write_json(out_dir / SUMMARY_FILE, doc)}
    with atomic_path(out_dir / TRIALS_FILE, ".csv") as tmp:
        study.trials_dataframe().to_csv(tmp, index=False)
    paths["trials"] = out_dir / TRIALS_FILE
    return paths | write_plots(study, out_dir)


def write_plots(study: Any, out_dir: Path) -> dict[str, Path]:
    """Optimisation history, parameter importances and parallel coordinates (matplotlib, PNG). A
    plot the study cannot draw yet (too few completed trials) is a figure that says so, so the
    files always exist (they are declared DVC outputs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ov

    plots = {"optimization_history": ov.plot_optimization_history,
             "param_importances": ov.plot_param_importances,
             "parallel_coordinate": ov.plot_parallel_coordinate}
    out = {}
    for name, plot in plots.items():
        path = out_dir / f"{name}.png"
        try:
            with warnings.catch_warnings():
                # experimental-API notices, and matplotlib's note on a dimension with one value
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                ax = plot(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5.5)
            fig.suptitle(f"{study.study_name}: {name.replace('_', ' ')} (validation macro-F1)", fontsize=10)
            fig.tight_layout()
            with atomic_path(path, ".png") as tmp:
                fig.savefig(tmp, dpi=110, format="png")
            plt.close(fig)
            out[name] = path
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            plt.close("all")
            log.info("plot %s not drawn: %s", name, err)
            fig = plt.figure(figsize=(9, 5.5))
            fig.text(0.5, 0.5, f"{study.study_name}: {name.replace('_', ' ')} needs more finished "
                     f"trials\n({err})", ha="center", va="center", wrap=True)
            with atomic_path(path, ".png") as tmp:
                fig.savefig(tmp, dpi=110, format="png")
            plt.close(fig)
            out[name] = path
    return out


__all__ = ["BEST_PARAMS_FILE", "PARENT_RUN_ATTR", "TrialDiverged", "best_params", "finished",
           "make_pruner", "make_sampler", "open_study", "optimize", "storage", "study_name", "suggest",
           "summary", "write_outputs"]
