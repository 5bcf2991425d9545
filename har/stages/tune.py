"""`har tune`: hyperparameter search over ``train.*`` keys with Optuna (docs/tuning.md).

Three steps, so the trials can run anywhere: ``prepare`` checks the space, opens (or resumes) the
study in ``tune.storage`` and its parent MLflow run; ``run_trials`` runs trials against that study,
in this process or on Dask workers (flows/tuning.py), each trial a nested MLflow run; ``finish``
writes best_params.yaml, the summary and the plots, and logs them to the parent run.

Trials train on the training subjects and are scored on the validation subjects, the same split
`har train` uses for early stopping. The test subjects are never read: the windows of the test
part are not even loaded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har import tracking
from har.config import Distribution, Params
from har.contracts import SPLITS_FILE, WINDOWS_FILE
from har.errors import HarError
from har.io import content_digest
from har.logging import get_logger, redact
from har.models import get_model
from har.training.bundle import ModelMeta
from har.training.data import load_split_data
from har.training.train import fit_model
from har.tuning import study as optuna_study
from har.tuning.space import model_space, trial_params

log = get_logger(__name__)


@dataclass(frozen=True)
class TuneSetup:
    """Everything a trial runner needs, picklable for Dask workers: params with absolute paths, the
    model, its checked space, the study and the parent MLflow run."""

    params: Params
    model: str
    space: dict[str, Distribution]
    study: str
    storage: str
    epochs: int
    parent_run_id: str


def _absolute(p: Params) -> Params:
    """``p`` with the paths trials read made absolute (a Dask worker runs in another directory)."""
    p = p.model_copy(deep=True)
    p.preprocess.out_dir = p.preprocess.out_dir.resolve()
    p.tracking.artifact_dir = p.tracking.artifact_dir.resolve()
    p.tracking.uri = tracking.tracking_uri(p)
    return p


def _fixed_train_settings(p: Params, model: str, space: dict[str, Distribution]) -> dict[str, Any]:
    """The train settings a trial does not vary (what makes two studies comparable)."""
    flat = tracking.flatten({"train": p.train.sections_for(model)})
    return {k: v for k, v in flat.items() if k not in space and k != "train.num_threads"}


def prepare(p: Params) -> TuneSetup:
    """Check the space, open or resume the study, open its parent MLflow run."""
    t = p.tune
    model = t.model or p.train.model
    space = model_space(p, model)
    epochs = t.epochs or p.train.epochs
    pp = p.preprocess
    digest = content_digest([pp.out_dir / WINDOWS_FILE, pp.out_dir / SPLITS_FILE])
    load_split_data(pp.out_dir, pp.classes)  # missing or bad windows fail here, before any trial
    name = t.study or optuna_study.study_name(
        model, space, t.sampler, _fixed_train_settings(p, model, space) | {"tune.epochs": epochs}, digest)
    st = optuna_study.open_study(name, t.storage, optuna_study.make_sampler(t.sampler, space, t.seed, model),
                                 optuna_study.make_pruner(t.pruner, epochs))
    tags = {"stage": "tune", "model": model, "optuna.study": name, "optuna.sampler": t.sampler,
            "optuna.pruner": t.pruner, "optuna.storage": redact(t.storage), "data_digest": digest}
    parent = tracking.study_run(p, st.user_attrs.get(optuna_study.PARENT_RUN_ATTR), f"tune-{name}", tags)
    if st.user_attrs.get(optuna_study.PARENT_RUN_ATTR) != parent:
        st.set_user_attr(optuna_study.PARENT_RUN_ATTR, parent)
        dims = {k: d.model_dump(exclude_none=True) for k, d in space.items()}
        tracking.log_run_params(p, parent, {"tune.n_trials": t.n_trials, "tune.timeout_s": t.timeout_s,
                                            "tune.epochs": epochs, "tune.space": dims})
    done = optuna_study.finished(st)
    log.info("study %s in %s: %d of %d trials finished; MLflow parent run %s", name, redact(t.storage),
             done, t.n_trials, parent)
    storage = optuna_study.absolute_storage(t.storage)  # workers may run in another directory
    return TuneSetup(_absolute(p), model, space, name, storage, epochs, parent)


def run_trials(setup: TuneSetup, worker: int = 0, threads: int | None = None) -> int:
    """Run trials of ``setup.study`` until it holds tune.n_trials finished ones or tune.timeout_s
    has passed; returns how many this call ran. ``worker`` varies the sampler's seed so parallel
    workers do not propose the same values; ``threads`` caps torch's (and BLAS/OpenMP's) threads."""
    from threadpoolctl import threadpool_limits

    p, t = setup.params, setup.params.tune
    pp = p.preprocess
    data = load_split_data(pp.out_dir, pp.classes)
    X_tr, y_tr = data.part("train")
    X_val, y_val = data.part("val")  # never "test"
    sampler = optuna_study.make_sampler(t.sampler, setup.space, t.seed + worker, setup.model)
    st = optuna_study.open_study(setup.study, setup.storage, sampler,
                                 optuna_study.make_pruner(t.pruner, setup.epochs))
    meta_base = dict(model=setup.model, classes=pp.classes, channels=data.windows.channels,
                     rate_hz=data.windows.rate_hz, window_len=int(data.windows.X.shape[1]),
                     window_s=pp.window_s, overlap=pp.overlap, train_subjects=data.splits["train"],
                     val_subjects=data.splits["val"], test_subjects=data.splits["test"])
    deep = get_model(setup.model).kind == "deep"

    def objective(trial: Any) -> float:
        import optuna

        values = {key: optuna_study.suggest(trial, key, dist) for key, dist in setup.space.items()}
        tp = trial_params(p, setup.model, values).train
        if threads is not None:
            tp.num_threads = threads
        tags = {"stage": "tune-trial", "optuna.study": setup.study, "optuna.trial": str(trial.number),
                "model": setup.model, "tune.worker": str(worker)}
        run_id = tracking.start_child_run(p, setup.parent_run_id, f"trial-{trial.number}", tags,
                                          {"train": tp.sections_for(setup.model), **values})
        trial.set_user_attr("mlflow_run_id", run_id)

        def epoch_done(epoch: int, metrics: dict[str, float]) -> None:
            tracking.log_run_metrics(p, run_id, metrics, step=epoch)
            loss = metrics.get("train_loss", 0.0)
            if not math.isfinite(loss):
                raise optuna_study.TrialDiverged(f"trial {trial.number}: training loss became {loss} at "
                                                 f"epoch {epoch} with {values}")
            trial.report(metrics["val_macro_f1"], epoch)
            if deep and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: val macro-F1 {metrics['val_macro_f1']:.4f}")

        meta = ModelMeta(**meta_base, train_params=tp.model_dump(mode="json"))
        started = time.perf_counter()
        try:
            with threadpool_limits(limits=threads):
                _, rep = fit_model(tp, meta, X_tr, y_tr, X_val, y_val, epochs=setup.epochs,
                                   on_epoch=epoch_done, show_progress=False)
        except optuna.TrialPruned:
            tracking.end_run(p, run_id, "KILLED")
            log.info("trial %d pruned after %.0f s (%s)", trial.number, time.perf_counter() - started, values)
            raise
        except BaseException:
            tracking.end_run(p, run_id, "FAILED")
            raise
        final = {"best_val_macro_f1": rep.val_macro_f1, "best_epoch": rep.best_epoch,
                 "train_seconds": rep.train_seconds}
        tracking.log_run_metrics(p, run_id, final)
        tracking.end_run(p, run_id, "FINISHED")
        log.info("trial %d: val macro-F1 %.4f (epoch %d, %.0f s) %s", trial.number, rep.val_macro_f1,
                 rep.best_epoch, rep.train_seconds, values)
        return rep.val_macro_f1

    return optuna_study.optimize(st, objective, t.n_trials, t.timeout_s)


def finish(setup: TuneSetup, seconds: float | None = None) -> dict[str, Any]:
    """Write best_params.yaml, study.json, trials.csv and the plots; log them to the parent run."""
    p = setup.params
    st = optuna_study.open_study(setup.study, setup.storage, None, None)
    paths = optuna_study.write_outputs(st, p.tune.out_dir)
    doc = optuna_study.summary(st)
    pid = setup.parent_run_id
    if doc["best_params"]:
        tracking.log_run_metrics(p, pid, {"best_val_macro_f1": doc["best_value"],
                                          **{f"trials_{k}": v for k, v in doc["trials"].items()}})
        tracking.set_run_tags(p, pid, {"best_trial": str(doc["best_trial"]),
                                       **{f"best.{k}": str(v) for k, v in doc["best_params"].items()}})
    tracking.log_run_artifacts(p, pid, [v for k, v in paths.items() if v.suffix == ".png"], "plots")
    tracking.log_run_artifacts(p, pid, [paths["best_params"], paths["summary"], paths["trials"]], "study")
    tracking.end_run(p, pid)
    counts = doc["trials"]
    best = (f"best val macro-F1 {doc['best_value']:.4f} (trial {doc['best_trial']}): "
            + ", ".join(f"{k}={v}" for k, v in doc["best_params"].items())) if doc["best_params"] \
        else "no trial completed"
    summary = (f"study {setup.study}: {counts['complete']} complete, {counts['pruned']} pruned, "
               f"{counts['fail']} failed; {best} → {paths['best_params']}")
    log.info("%s", summary)
    return {**doc, "paths": {k: str(v) for k, v in paths.items()}, "parent_run_id": pid,
            "seconds": seconds, "summary": summary}


def tune(p: Params) -> dict[str, Any]:
    """The whole search in this process (tune.workers 1); flows/tuning.py runs it on Dask."""
    if p.tune.workers != 1:
        raise HarError(f"tune.workers {p.tune.workers} runs the trials on Dask: use `har tune` (which "
                       "starts the Prefect flow) or flows.tuning.tune_flow; tune.workers 1 runs them here")
    started = time.perf_counter()
    setup = prepare(p)
    try:
        run_trials(setup, threads=p.train.num_threads)
    except BaseException:
        tracking.end_run(setup.params, setup.parent_run_id, "KILLED")
        raise
    return finish(setup, time.perf_counter() - started)


def best_params_path(p: Params) -> Path:
    return p.tune.out_dir / optuna_study.BEST_PARAMS_FILE


__all__ = ["TuneSetup", "best_params_path", "finish", "prepare", "run_trials", "tune"]
