"""Model stages: train → evaluate → export (docs/models.md), and the subject k-fold protocol.

Each reads its params section and the contract files of the stage before it, and logs to the same
MLflow run (the one `train` started; its id is in ``<train.out_dir>/trained/run.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from har import tracking
from har.config import Params
from har.contracts import (
    CHECKPOINTS_DIR,
    ONNX_INPUT,
    ONNX_OUTPUT,
    RUN_FILE,
    SPLITS_FILE,
    TRAINED_DIR,
    WINDOWS_FILE,
    WindowSpec,
)
from har.data.ingest import read_recordings
from har.data.own import channels_present
from har.errors import DataError, HarError
from har.evaluation.context import context_predictions
from har.evaluation.cv import (
    FoldCallback,
    FoldContext,
    FoldSplit,
    cross_validate,
    fold_splits,
    summarize,
    summary_markdown,
    write_cv_tables,
)
from har.evaluation.metrics import (
    classification_metrics,
    confusion_frame,
    write_confusion,
    write_history,
    write_predictions,
)
from har.export.cost import model_cost
from har.export.onnx import export_onnx, latency_ms, parity, read_metadata, session
from har.export.quantize import check_calibration, quantize_int8, to_ort
from har.io import atomic_path, content_digest, sha256_file, write_json
from har.logging import get_logger
from har.preprocess.windows import Windows, make_windows
from har.registry.gate import DIGEST_TAG
from har.training.bundle import ModelMeta, TrainedModel
from har.training.data import SplitData, load_split_data
from har.training.distributed import rank_context
from har.training.loop import EpochCallback
from har.training.train import fit_model

log = get_logger(__name__)


def model_dir(p: Params) -> Path:
    return p.train.out_dir / TRAINED_DIR


def run_info(p: Params) -> dict[str, Any]:
    """The MLflow run and model `har train` wrote (``run.json`` beside the trained model)."""
    path = model_dir(p) / RUN_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing; run `har train` first")
    return json.loads(path.read_text())


def model_meta(p: Params, data: SplitData, model: str | None = None) -> ModelMeta:
    """What a model trained on ``data`` under params ``p`` is: classes, channels, window, subjects."""
    w, pp = data.windows, p.preprocess
    return ModelMeta(model=model or p.train.model, classes=pp.classes, channels=w.channels,
                     rate_hz=w.rate_hz, window_len=int(w.X.shape[1]), window_s=pp.window_s,
                     overlap=pp.overlap, train_subjects=data.splits["train"],
                     val_subjects=data.splits["val"], test_subjects=data.splits["test"],
                     train_params=p.train.model_dump(mode="json"),
                     transitions=pp.transition_grammar())


def train(p: Params, *, resume: bool = False, show_progress: bool = True,
          on_epoch: EpochCallback | None = None) -> dict[str, Any]:
    """Train params train.model on the training subjects; early stopping on validation subjects.

    ``on_epoch(epoch, metrics)`` is called after each epoch, after MLflow has the epoch's metrics
    (the Prefect flow reports progress through it; har itself knows nothing of Prefect).

    Under torchrun (`har train --nproc N`) every rank calls this; rank 0 alone opens the MLflow run,
    writes checkpoints, the model, reports and run.json, and the other ranks return
    ``{"rank": r, "summary": …}`` once trained."""
    tp, pp = p.train, p.preprocess
    data = load_split_data(pp.out_dir, pp.classes)
    X_tr, y_tr = data.part("train")
    X_val, y_val = data.part("val")
    meta = model_meta(p, data)
    digest = content_digest([pp.out_dir / WINDOWS_FILE, pp.out_dir / SPLITS_FILE])
    checkpoints = tp.out_dir / CHECKPOINTS_DIR
    tags = {"data_digest": digest, "stage": "train", "model": tp.model,
            "test_subjects": json.dumps(data.splits["test"]),
            # what the model card of a registered version says about its data (har.registry.card)
            "train_subjects": json.dumps(data.splits["train"]),
            "val_subjects": json.dumps(data.splits["val"]),
            "channels": json.dumps(meta.channels), "classes": json.dumps(meta.classes),
            "rate_hz": str(meta.rate_hz), "window_s": str(meta.window_s), "overlap": str(meta.overlap)}
    params = {"train": tp.sections_for(tp.model), "preprocess": pp.model_dump(mode="json"),
              "split": p.split.model_dump(mode="json")}
    def epoch_done(epoch: int, metrics: dict[str, float]) -> None:
        tracking.log_metrics(metrics, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, metrics)

    with rank_context(tp) as rank, tracking.training_run(p, checkpoints, resume=resume, tags=tags,
                                                         params=params, main=rank.is_main) as run:
        model, report = fit_model(tp, meta, X_tr, y_tr, X_val, y_val, checkpoint_dir=checkpoints,
                                  resume=resume, on_epoch=epoch_done if rank.is_main else None,
                                  show_progress=show_progress and rank.is_main, rank=rank)
        if not rank.is_main:
            return {"rank": rank.rank, "summary": f"rank {rank.rank}/{rank.world_size}: trained "
                    f"{report.epochs_run} epochs; rank 0 writes the model"}
        out = model.save(model_dir(p))
        metrics = {"val_macro_f1": report.val_macro_f1, "best_epoch": report.best_epoch,
                   "epochs_run": report.epochs_run, "train_seconds": report.train_seconds,
                   "n_params": meta.n_params}
        tracking.log_metrics({f"final_{k}": float(v) for k, v in metrics.items()})
        tracking.log_trained_model(model, out, X_val if len(X_val) else X_tr)
        history_png = write_history(report.history, tp.reports_dir)
        tracking.log_artifacts([history_png], "plots")
        info = {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "data_digest": digest,
                "model": tp.model}
        write_json(out / RUN_FILE, info)
        write_json(tp.reports_dir / "metrics.json", metrics)
    summary = (f"trained {tp.model}: val macro-F1 {report.val_macro_f1:.4f} (epoch {report.best_epoch}), "
               f"{meta.n_params:,} parameters")
    log.info("%s", summary)
    return {**info, "model_path": str(out), **metrics, "summary": summary}


def evaluate(p: Params) -> dict[str, Any]:
    """Score the trained model on the official test subjects; metrics, confusion csv + PNG."""
    ev, pp = p.evaluate, p.preprocess
    model = TrainedModel.load(model_dir(p))
    data = load_split_data(pp.out_dir, pp.classes)
    X, y = data.part("test")
    model.check_input(X, str(pp.out_dir / WINDOWS_FILE))
    probs = model.predict_proba(X)
    pred = probs.argmax(1)
    m = classification_metrics(y, pred, pp.classes)
    # the test recordings decoded as the API's timeline decodes them (persistence + the grammar)
    test = np.isin(data.windows.subject, data.splits["test"])
    in_context = context_predictions(probs, data.windows, test, pp.classes, model.meta.transitions,
                                     p.serve.hmm_switch_prob)
    mc = classification_metrics(y, in_context, pp.classes)
    png, csv = ev.out_dir / "confusion.png", ev.out_dir / "confusion.csv"
    write_confusion(confusion_frame(y, pred, pp.classes), csv, png,
                    f"{model.meta.model}: test subjects {data.splits['test']}")
    per_class = write_predictions(y, pred, pp.classes, m, ev.out_dir)
    info = run_info(p)
    with tracking.open_run(p, info["run_id"]):
        tracking.log_metrics({"test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"],
                              "test_macro_f1_context": mc["macro_f1"],
                              "test_accuracy_context": mc["accuracy"],
                              **{f"test_f1_{c}": v["f1"] for c, v in m["per_class"].items()}})
        tracking.log_artifacts([png, csv, per_class], "evaluation")
    result = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_windows": m["n_windows"],
              "macro_f1_context": mc["macro_f1"], "accuracy_context": mc["accuracy"],
              "test_subjects": data.splits["test"], "model": model.meta.model}
    write_json(ev.out_dir / "metrics.json", result)
    summary = (f"test subjects {data.splits['test']}: accuracy {m['accuracy']:.4f}, "
               f"macro-F1 {m['macro_f1']:.4f} (windows one by one; with recording context "
               f"{mc['macro_f1']:.4f})")
    log.info("%s", summary)
    return {**result, "per_class": m["per_class"], "confusion_png": str(png), "run_id": info["run_id"],
            "summary": summary}


def cv_windows(p: Params) -> Windows:
    """The recordings windowed for the subject k-fold protocol (evaluate.cv_window_s/cv_overlap)."""
    ev, pp = p.evaluate, p.preprocess
    df, meta = read_recordings(p.data.interim_path)
    return make_windows(df, float(meta["sampling_rate_hz"]), pp.target_rate_hz, ev.cv_window_s,
                        ev.cv_overlap, pp.label_policy, pp.min_purity, pp.classes, channels_present(df),
                        pp.gravity_split, pp.gravity_cutoff_hz)


# Runs the protocol's (model, fold) jobs somewhere else (flows/cv.py: Prefect tasks on Dask workers)
# and returns one row per job, in job order, calling ``on_fold`` as each finishes.
FoldExecutor = Callable[[list[tuple[str, FoldSplit]], FoldCallback], list[dict[str, Any]]]


def cv_context(p: Params) -> FoldContext:
    """How the protocol scores "with context": the grammar and persistence the API would use."""
    return FoldContext(p.preprocess.transition_grammar(), p.serve.hmm_switch_prob)


def evaluate_cv(p: Params, *, models: list[str] | None = None, show_progress: bool = True,
                on_fold: FoldCallback | None = None, executor: FoldExecutor | None = None) -> dict[str, Any]:
    """`har evaluate --cv`: the WHAR subject k-fold protocol for every model in evaluate.cv_models.

    ``on_fold(row)`` is called with each finished (model, fold) row, e.g. a flow's progress report.
    The folds run in turn in this process, or through ``executor`` (the Dask flow); the table is the
    same either way: rows in (fold, model) order."""
    import mlflow

    ev, pp = p.evaluate, p.preprocess
    models = models or list(ev.cv_models)
    w = cv_windows(p)
    tracking.setup_mlflow(p)
    with Progress(disable=not show_progress, transient=True) as progress, \
            mlflow.start_run(run_name="cv-" + "-".join(models)):
        task = progress.add_task(f"{ev.cv_folds}-fold subject CV", total=ev.cv_folds * len(models))

        def fold_done(row: dict[str, Any]) -> None:
            progress.advance(task)
            log.info("fold %d %s: macro-F1 %.4f (%.0f s)", row["fold"], row["model"], row["macro_f1"],
                     row["train_seconds"])
            if on_fold is not None:
                on_fold(row)

        if executor is None:
            results = cross_validate(w, pp.classes, models, p.train, folds=ev.cv_folds,
                                     n_val=p.split.n_val_subjects, seed=p.split.seed,
                                     window_s=ev.cv_window_s, overlap=ev.cv_overlap, epochs=ev.cv_epochs,
                                     on_fold=fold_done, context=cv_context(p))
        else:
            splits = fold_splits(sorted(set(w.subject.tolist())), ev.cv_folds, p.split.n_val_subjects,
                                 p.split.seed)
            results = pd.DataFrame(executor([(m, s) for s in splits for m in models], fold_done))
        paths = write_cv_tables(results, ev.cv_out_dir)
        summary = summarize(results)
        mlflow.set_tags({"stage": "cv", "git_commit": tracking.git_commit()})
        mlflow.log_params({"cv_folds": ev.cv_folds, "cv_window_s": ev.cv_window_s,
                           "cv_overlap": ev.cv_overlap, "cv_epochs": ev.cv_epochs,
                           "models": ",".join(models)})
        for r in summary.itertuples():
            mlflow.log_metrics({f"cv_macro_f1_mean_{r.model}": r.macro_f1_mean,
                                f"cv_macro_f1_std_{r.model}": r.macro_f1_std})
        tracking.log_artifacts(list(paths.values()), "cv")
    return {"table": summary_markdown(summary), "summary": summary.to_dict(orient="records"),
            "paths": {k: str(v) for k, v in paths.items()}}


def export(p: Params) -> dict[str, Any]:
    """ONNX with normalisation inside; parity vs the trained model, latency and cost, logged to
    MLflow; with export.quantize int8 the served model is the int8 one (its macro-F1 loss against
    the fp32 model is measured here and gated at register); with export.ort also the ORT format."""
    ex, pp = p.export, p.preprocess
    model = TrainedModel.load(model_dir(p))
    data = load_split_data(pp.out_dir, pp.classes)
    X, y = data.part("test")
    if len(X) == 0:
        X, y = data.part("val")
    info = run_info(p)
    # Everything happens on temp files and ex.path is replaced only once MLflow holds the model:
    # a failed parity check or artifact upload (S3 down) leaves the previous model.onnx and its
    # export report consistent, and nothing new for `har register` to pick up.
    with atomic_path(ex.path, ".onnx") as tmp:
        export_onnx(model, tmp, opset=ex.opset)
        diff = parity(model, tmp, X)
        if diff > ex.parity_atol:
            raise HarError(f"export: ONNX and {model.meta.model} disagree by {diff:.2e} "
                           f"(> export.parity_atol {ex.parity_atol:.0e}); {ex.path} left unchanged")
        extra: dict[str, Any] = {"quantize": ex.quantize}
        if ex.quantize == "int8":
            extra |= _quantize_int8(p, data, tmp, X, y)
        extra |= model_cost(model, tmp)  # the size on disk of the file that is served
        lat = latency_ms(tmp, X[0], runs=ex.latency_runs)
        # the ONNX bytes' digest identifies the model for idempotent registration (har.registry.gate)
        digest = sha256_file(tmp)
        with tracking.open_run(p, info["run_id"]):
            example = X[:2]
            probs = session(tmp).run([ONNX_OUTPUT], {ONNX_INPUT: example})[0]
            tracking.log_metrics({"parity_max_abs_diff": diff, **lat,
                                  **{k: float(v) for k, v in extra.items() if isinstance(v, int | float)}})
            tracking.set_tags({DIGEST_TAG: digest, "export.quantize": ex.quantize})
            try:
                model_uri = tracking.log_onnx_model(tmp, example, probs)
            except HarError as err:
                raise HarError(f"export: {err}; {ex.path} and {ex.report_path} left unchanged") from None
    if ex.ort:
        extra["ort_path"] = str(to_ort(ex.path, ex.path.with_suffix(".ort")))
    result = {"onnx_path": str(ex.path), "parity_max_abs_diff": diff, **lat, "model_uri": model_uri,
              "run_id": info["run_id"], "model": model.meta.model, DIGEST_TAG: digest, **extra}
    write_json(ex.report_path, result)
    summary = (f"exported {ex.path}{' (int8)' if ex.quantize == 'int8' else ''}: parity {diff:.2e}, "
               f"batch-1 p50 {lat['latency_p50_ms']:.3f} ms, {extra['macs']:,} multiply-adds per window")
    log.info("%s", summary)
    return {**result, "summary": summary}


def _quantize_int8(p: Params, data: SplitData, fp32: Path, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Replace the fp32 file with its int8 quantisation (calibrated on a seeded sample of training
    windows); return the quality it kept: test macro-F1 of both and the drop."""
    ex, pp = p.export, p.preprocess
    X_train, _ = data.part("train")
    rng = np.random.default_rng(p.split.seed)
    calib = X_train[rng.permutation(len(X_train))[:ex.calibration_windows]]
    spec = WindowSpec.from_metadata(read_metadata(fp32))
    check_calibration(spec, calib, data.windows.channels, str(pp.out_dir / WINDOWS_FILE))

    def macro_f1(path: Path) -> float:
        probs = session(path, threads=2).run([ONNX_OUTPUT], {ONNX_INPUT: X})[0]
        return float(classification_metrics(y, probs.argmax(1), pp.classes)["macro_f1"])

    fp32_f1 = macro_f1(fp32)
    int8 = fp32.with_name(fp32.stem + ".int8.onnx")
    try:
        quantize_int8(fp32, int8, calib)
        int8_f1 = macro_f1(int8)
        int8.replace(fp32)
    finally:
        int8.unlink(missing_ok=True)
    log.info("int8: test macro-F1 %.4f (fp32 %.4f)", int8_f1, fp32_f1)
    return {"fp32_macro_f1": fp32_f1, "int8_macro_f1": int8_f1, "quant_macro_f1_drop": fp32_f1 - int8_f1}
