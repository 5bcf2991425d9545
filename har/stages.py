"""Stage entry points: typed params in, stage functions called, contract files out.

The CLI, dvc.yaml (through the CLI) and Prefect flows call these; they hold no stage logic,
only the mapping from params.yaml sections onto the pure functions in each stage package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from har.config import Params, data_mirror
from har.logging import get_logger

if TYPE_CHECKING:
    from har.data.lake import PushReport

log = get_logger(__name__)


def fetch(p: Params, mirror: str | None = None) -> Path:
    """Verified copy of data.dataset; mirror (a folder or s3:// URL) overrides HAR_DATA_MIRROR."""
    from har.data.fetch import fetch_dataset

    return fetch_dataset(p.data.dataset, p.data.raw_dir, data_mirror(mirror),
                         retries=p.data.download_retries, timeout_s=p.data.download_timeout_s)


def push(p: Params, to: str, own: list[Path] | None = None, *,
         create_bucket: bool = False) -> PushReport:
    """Upload the verified raw copy of data.dataset (and own recordings) to the s3:// lake."""
    from har.data.lake import push as push_to_lake
    from har.data.registry import get_dataset

    return push_to_lake(to, get_dataset(p.data.dataset), p.data.raw_dir, own,
                        create_bucket=create_bucket)


def ingest(p: Params) -> Path:
    from har.data.ingest import read_hapt, write_recordings
    from har.data.registry import get_dataset

    spec = get_dataset(p.data.dataset)
    df = read_hapt(p.data.raw_dir / spec.folder, subjects=p.data.subjects)
    write_recordings(df, p.data.interim_path, sampling_rate_hz=spec.sampling_rate_hz,
                     source=spec.name)
    log.info("ingested %d samples from %d sessions", len(df), df["session"].nunique())
    return p.data.interim_path


def import_own(p: Params, paths: list[Path], out: Path, *, subject: int, acc_unit: str,
               gyro_unit: str) -> Path:
    from har.data.ingest import write_recordings
    from har.data.own import import_recordings

    df = import_recordings(paths, target_rate_hz=p.preprocess.target_rate_hz, subject=subject,
                           acc_unit=acc_unit, gyro_unit=gyro_unit)
    write_recordings(df, out, sampling_rate_hz=p.preprocess.target_rate_hz, source="own")
    return out


def validate(p: Params, *, windows: bool = False) -> str:
    """Validate recordings (or processed windows); raise ValidationFailed with a short report."""
    from har.data.ingest import read_recordings
    from har.data.registry import get_dataset
    from har.validation.run import raise_for_failure, validate_recordings, validate_windows

    v = p.validate_
    if windows:
        from har.preprocess.windows import load_windows

        out = p.preprocess.out_dir
        w = load_windows(out / "windows.npz")
        splits = json.loads((out / "splits.json").read_text())
        report = validate_windows(
            w.X, w.y, w.subject,
            {k: splits[k] for k in ("train", "val", "test")},
            classes=p.preprocess.classes, window_len=w.X.shape[1],
            project_dir=v.gx_dir, docs_dir=v.docs_dir,
        )
        report_path = v.report_path.with_name("validation_windows.json")
    else:
        df, meta = read_recordings(p.data.interim_path)
        report = validate_recordings(
            df, project_dir=v.gx_dir, classes=p.preprocess.classes,
            sampling_rate_hz=float(meta["sampling_rate_hz"]),
            acc_abs_max_g=v.acc_abs_max_g, gyro_abs_max_rad_s=v.gyro_abs_max_rad_s,
            rate_tolerance=v.rate_tolerance, docs_dir=v.docs_dir,
            # every subject of the dataset (or of the configured subset) must be present
            subjects=p.data.subjects or list(get_dataset(p.data.dataset).subjects) or None,
        )
        report_path = v.report_path
    # A failing run writes its report beside the good one, never over it.
    report.to_json(report_path if report.success else report_path.with_suffix(".failed.json"))
    raise_for_failure(report)
    summary = report.summary()
    log.info("%s%s", "windows " if windows else "", summary)
    return summary


def preprocess(p: Params) -> dict:
    from har.data.ingest import read_recordings
    from har.preprocess.pipeline import preprocess as run_preprocess

    df, meta = read_recordings(p.data.interim_path)
    pp, sp = p.preprocess, p.split
    stats = run_preprocess(
        df, float(meta["sampling_rate_hz"]), pp.out_dir,
        target_rate_hz=pp.target_rate_hz, window_s=pp.window_s, overlap=pp.overlap,
        label_policy=pp.label_policy, min_purity=pp.min_purity, gravity_split=pp.gravity_split,
        gravity_cutoff_hz=pp.gravity_cutoff_hz, classes=pp.classes,
        test_subjects=sp.test_subjects, n_val=sp.n_val_subjects, cv_folds=sp.cv_folds,
        seed=sp.seed,
    )
    # per-channel statistics of the training windows: the reference the drift monitor compares to
    from har.monitoring.reference import write_reference_stats

    write_reference_stats(p)
    log.info("preprocessed %d windows into %s", stats["n_windows"], pp.out_dir)
    return stats


# ----------------------------------------------------------------------------------------------
# Models: train → evaluate → export → register → promote. Each stage reads its params section and
# the contract files of the stage before it (docs/models.md), and logs to the same MLflow run.

TRAINED_DIR = "trained"
RUN_FILE = "run.json"


def _model_dir(p: Params) -> Path:
    return p.train.out_dir / TRAINED_DIR


def _run_info(p: Params) -> dict:
    from har.errors import DataError

    path = _model_dir(p) / RUN_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing; run `har train` first")
    return json.loads(path.read_text())


def _write_json(path: Path, obj: dict) -> None:
    from har.io import atomic_path

    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def _open_run(p: Params, run_id: str):  # noqa: ANN202 - mlflow ActiveRun
    import mlflow
    from mlflow.exceptions import MlflowException

    from har.errors import HarError
    from har.tracking import setup_mlflow, tracking_uri

    setup_mlflow(p)
    try:
        return mlflow.start_run(run_id=run_id)
    except MlflowException as e:
        raise HarError(f"MLflow run {run_id} (from `har train`) is not in the tracking store "
                       f"{tracking_uri(p)}; train and later stages must use the same "
                       f"MLFLOW_TRACKING_URI ({e.message})") from None


def _log_model(model, model_dir: Path, X_example) -> None:  # noqa: ANN001 - TrainedModel, ndarray
    import mlflow
    from mlflow.models import infer_signature

    from har.tracking import SKLEARN_REQUIREMENTS, TORCH_REQUIREMENTS

    example = X_example[:2]
    signature = infer_signature(example, model.predict_proba(example))
    if model.is_deep:
        mlflow.pytorch.log_model(model.net, name="model", signature=signature, input_example=example,
                                 pip_requirements=TORCH_REQUIREMENTS)
    else:
        from har.training.pyfunc import ClassicPyfunc

        mlflow.pyfunc.log_model(name="model", python_model=ClassicPyfunc(),
                                artifacts={"model": str(model_dir / "model.skops")},
                                signature=signature, input_example=example,
                                pip_requirements=SKLEARN_REQUIREMENTS)


def train(p: Params, *, resume: bool = False, show_progress: bool = True) -> dict:
    """Train params train.model on the training subjects; early stopping on validation subjects."""
    import mlflow

    from har.evaluation.metrics import write_history_plot
    from har.tracking import file_digest, flatten, git_commit, setup_mlflow
    from har.training.data import load_split_data
    from har.training.train import fit_model

    tp, pp = p.train, p.preprocess
    data = load_split_data(pp.out_dir, pp.classes)
    X_tr, y_tr = data.part("train")
    X_val, y_val = data.part("val")
    meta = model_meta(p, data)
    digest = file_digest([pp.out_dir / "windows.npz", pp.out_dir / "splits.json"])
    exp_id = setup_mlflow(p)
    section = {k: v for k, v in tp.model_dump(mode="json").items()
               if k not in {"cnn1d", "deepconvlstm", "tinyhar", "classic"} or k == tp.model}
    # --resume continues the interrupted MLflow run too, so its per-epoch curves stay whole
    run_marker = tp.out_dir / "checkpoints" / "mlflow_run_id"
    previous = run_marker.read_text().strip() if resume and run_marker.is_file() else None
    with (mlflow.start_run(run_id=previous) if previous else
          mlflow.start_run(run_name=f"train-{tp.model}")) as run:
        run_marker.parent.mkdir(parents=True, exist_ok=True)
        run_marker.write_text(run.info.run_id)
        mlflow.set_tags({"git_commit": git_commit(), "data_digest": digest, "stage": "train",
                         "model": tp.model, "test_subjects": json.dumps(data.splits["test"])})
        if previous is None:  # params are immutable in MLflow; a resumed run already has them
            mlflow.log_params(flatten({"train": section, "preprocess": pp.model_dump(mode="json"),
                                       "split": p.split.model_dump(mode="json")}))

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics(metrics, step=epoch)

        model, report = fit_model(tp, meta, X_tr, y_tr, X_val, y_val,
                                  checkpoint_dir=tp.out_dir / "checkpoints", resume=resume,
                                  on_epoch=on_epoch, show_progress=show_progress)
        out = model.save(_model_dir(p))
        metrics = {"val_macro_f1": report.val_macro_f1, "best_epoch": report.best_epoch,
                   "epochs_run": report.epochs_run, "train_seconds": report.train_seconds,
                   "n_params": meta.n_params}
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in metrics.items()})
        _log_model(model, out, X_val if len(X_val) else X_tr)
        reports = tp.reports_dir
        import pandas as pd

        from har.io import atomic_path

        with atomic_path(reports / "history.csv", ".csv") as tmp:
            pd.DataFrame(report.history).to_csv(tmp, index=False)
        write_history_plot(report.history, reports / "history.png")
        mlflow.log_artifact(str(reports / "history.png"), "plots")
        info = {"run_id": run.info.run_id, "experiment_id": exp_id, "data_digest": digest,
                "model": tp.model}
        _write_json(out / RUN_FILE, info)
        _write_json(reports / "metrics.json", metrics)
    log.info("trained %s: val macro-F1 %.4f (epoch %d), %d parameters", tp.model, report.val_macro_f1,
             report.best_epoch, meta.n_params)
    return {**info, "model_path": str(out), **metrics}


def evaluate(p: Params) -> dict:
    """Score the trained model on the official test subjects; metrics, confusion csv + PNG."""
    import mlflow

    from har.evaluation.metrics import classification_metrics, confusion_frame, write_confusion
    from har.training.bundle import TrainedModel
    from har.training.data import load_split_data

    ev, pp = p.evaluate, p.preprocess
    model = TrainedModel.load(_model_dir(p))
    data = load_split_data(pp.out_dir, pp.classes)
    X, y = data.part("test")
    model.check_input(X, str(pp.out_dir / "windows.npz"))
    pred = model.predict_proba(X).argmax(1)
    m = classification_metrics(y, pred, pp.classes)
    cm = confusion_frame(y, pred, pp.classes)
    ev.out_dir.mkdir(parents=True, exist_ok=True)
    png, csv = ev.out_dir / "confusion.png", ev.out_dir / "confusion.csv"
    write_confusion(cm, csv, png, f"{model.meta.model}: test subjects {data.splits['test']}")
    # long form for `dvc plots` (confusion template: actual vs predicted per window)
    import pandas as pd

    from har.io import atomic_path

    with atomic_path(ev.out_dir / "predictions.csv", ".csv") as tmp:
        pd.DataFrame({"actual": [pp.classes[i] for i in y],
                      "predicted": [pp.classes[i] for i in pred]}).to_csv(tmp, index=False)
    per_class = pd.DataFrame(m["per_class"]).T.rename_axis("class")
    with atomic_path(ev.out_dir / "per_class.csv", ".csv") as tmp:
        per_class.to_csv(tmp)
    info = _run_info(p)
    with _open_run(p, info["run_id"]):
        mlflow.log_metrics({"test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"],
                            **{f"test_f1_{c}": v["f1"] for c, v in m["per_class"].items()}})
        mlflow.set_tag("test_subjects", json.dumps(data.splits["test"]))
        mlflow.log_artifact(str(png), "evaluation")
        mlflow.log_artifact(str(csv), "evaluation")
        mlflow.log_artifact(str(ev.out_dir / "per_class.csv"), "evaluation")
    summary = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_windows": m["n_windows"],
               "test_subjects": data.splits["test"], "model": model.meta.model}
    _write_json(ev.out_dir / "metrics.json", summary)
    log.info("test subjects %s: accuracy %.4f, macro-F1 %.4f", data.splits["test"], m["accuracy"],
             m["macro_f1"])
    return {**summary, "per_class": m["per_class"], "confusion_png": str(png), "run_id": info["run_id"]}


def cv_windows(p: Params):  # noqa: ANN201 - har.preprocess.windows.Windows
    """The recordings windowed for the subject k-fold protocol (evaluate.cv_window_s/cv_overlap)."""
    from har.data.ingest import read_recordings
    from har.data.own import channels_present
    from har.preprocess.windows import make_windows

    ev, pp = p.evaluate, p.preprocess
    df, meta = read_recordings(p.data.interim_path)
    return make_windows(df, float(meta["sampling_rate_hz"]), pp.target_rate_hz, ev.cv_window_s,
                        ev.cv_overlap, pp.label_policy, pp.min_purity, pp.classes, channels_present(df),
                        pp.gravity_split, pp.gravity_cutoff_hz)


def model_meta(p: Params, data, model: str | None = None):  # noqa: ANN001, ANN201 - SplitData → ModelMeta
    """What a model trained on ``data`` under params ``p`` is: classes, channels, window, subjects."""
    from har.training.bundle import ModelMeta

    w, pp = data.windows, p.preprocess
    return ModelMeta(model=model or p.train.model, classes=pp.classes, channels=w.channels,
                     rate_hz=w.rate_hz, window_len=int(w.X.shape[1]), window_s=pp.window_s,
                     overlap=pp.overlap, train_subjects=data.splits["train"],
                     val_subjects=data.splits["val"], test_subjects=data.splits["test"],
                     train_params=p.train.model_dump(mode="json"))


def evaluate_cv(p: Params, *, models: list[str] | None = None, show_progress: bool = True) -> dict:
    """`har evaluate --cv`: the WHAR subject k-fold protocol for every model in evaluate.cv_models."""
    import mlflow
    from rich.progress import Progress

    from har.evaluation.cv import cross_validate, summarize, summary_markdown, write_cv_tables
    from har.tracking import git_commit, setup_mlflow

    ev, pp = p.evaluate, p.preprocess
    models = models or list(ev.cv_models)
    w = cv_windows(p)
    setup_mlflow(p)
    with Progress(disable=not show_progress, transient=True) as progress, \
            mlflow.start_run(run_name="cv-" + "-".join(models)):
        task = progress.add_task(f"{ev.cv_folds}-fold subject CV", total=ev.cv_folds * len(models))

        def on_fold(row: dict) -> None:
            progress.advance(task)
            log.info("fold %d %s: macro-F1 %.4f (%.0f s)", row["fold"], row["model"], row["macro_f1"],
                     row["train_seconds"])

        results = cross_validate(w, pp.classes, models, p.train, folds=ev.cv_folds,
                                 n_val=p.split.n_val_subjects, seed=p.split.seed, window_s=ev.cv_window_s,
                                 overlap=ev.cv_overlap, epochs=ev.cv_epochs, on_fold=on_fold)
        paths = write_cv_tables(results, ev.cv_out_dir)
        summary = summarize(results)
        mlflow.set_tags({"stage": "cv", "git_commit": git_commit()})
        mlflow.log_params({"cv_folds": ev.cv_folds, "cv_window_s": ev.cv_window_s,
                           "cv_overlap": ev.cv_overlap, "cv_epochs": ev.cv_epochs,
                           "models": ",".join(models)})
        for r in summary.itertuples():
            mlflow.log_metrics({f"cv_macro_f1_mean_{r.model}": r.macro_f1_mean,
                                f"cv_macro_f1_std_{r.model}": r.macro_f1_std})
        for path in paths.values():
            mlflow.log_artifact(str(path), "cv")
    return {"table": summary_markdown(summary), "summary": summary.to_dict(orient="records"),
            "paths": {k: str(v) for k, v in paths.items()}}


def export(p: Params) -> dict:
    """ONNX with normalisation inside; parity vs the trained model and latency, logged to MLflow."""
    import mlflow
    import onnx

    from har.errors import HarError
    from har.export.onnx import export_onnx, latency_ms, parity
    from har.io import atomic_path, sha256_file
    from har.logging import redact
    from har.registry.gate import DIGEST_TAG
    from har.tracking import ONNX_REQUIREMENTS, tracking_uri
    from har.training.bundle import TrainedModel
    from har.training.data import load_split_data

    ex, pp = p.export, p.preprocess
    model = TrainedModel.load(_model_dir(p))
    data = load_split_data(pp.out_dir, pp.classes)
    X, _ = data.part("test")
    if len(X) == 0:
        X, _ = data.part("val")
    info = _run_info(p)
    # Everything happens on the temp file and it replaces ex.path only once MLflow holds the model:
    # a failed parity check or artifact upload (S3 down) leaves the previous model.onnx and its
    # export report consistent, and nothing new for `har register` to pick up.
    with atomic_path(ex.path, ".onnx") as tmp:
        export_onnx(model, tmp, opset=ex.opset)
        diff = parity(model, tmp, X)
        if diff > ex.parity_atol:
            raise HarError(f"export: ONNX and {model.meta.model} disagree by {diff:.2e} "
                           f"(> export.parity_atol {ex.parity_atol:.0e}); {ex.path} left unchanged")
        lat = latency_ms(tmp, X[0], runs=ex.latency_runs)
        # the ONNX bytes' digest identifies the model for idempotent registration (har.registry.gate)
        digest = sha256_file(tmp)
        with _open_run(p, info["run_id"]):
            from mlflow.models import infer_signature

            from har.export.onnx import session

            example = X[:2]
            probs = session(tmp).run(["probs"], {"window": example})[0]
            mlflow.log_metrics({"parity_max_abs_diff": diff, **lat})
            mlflow.set_tag(DIGEST_TAG, digest)
            try:
                model_info = mlflow.onnx.log_model(onnx.load(str(tmp)), name="onnx",
                                                   signature=infer_signature(example, probs),
                                                   input_example=example,
                                                   pip_requirements=ONNX_REQUIREMENTS)
            except Exception as err:  # MlflowException, HTTP and S3 errors after MLflow's retries
                raise HarError(f"export: logging the ONNX model to MLflow ({redact(tracking_uri(p))}) "
                               f"failed: {redact(str(err).splitlines()[0] if str(err) else repr(err))}; "
                               f"{ex.path} and {ex.report_path} left unchanged") from None
    result = {"onnx_path": str(ex.path), "parity_max_abs_diff": diff, **lat,
              "model_uri": model_info.model_uri, "run_id": info["run_id"], "model": model.meta.model,
              DIGEST_TAG: digest}
    _write_json(ex.report_path, result)
    log.info("exported %s: parity %.2e, batch-1 p50 %.3f ms", ex.path, diff, lat["latency_p50_ms"])
    return result


def register(p: Params) -> dict:
    """Register the exported ONNX model as a new version of registry.model_name (alias challenger).

    Idempotent: if this run's exported model is already a version, that version is returned with
    ``created: False`` and nothing in the registry changes.
    """
    from har.errors import DataError
    from har.registry.gate import DIGEST_TAG, client_for, register_version, registration_line
    from har.tracking import setup_mlflow, tracking_uri

    path = p.export.report_path
    if not path.is_file():
        raise DataError(f"{path}: missing; run `har export` first")
    exp = json.loads(path.read_text())
    setup_mlflow(p)
    client = client_for(tracking_uri(p))
    _check_model_artifacts(exp["model_uri"], tracking_uri(p))
    run = client.get_run(exp["run_id"])
    tags = {k: run.data.tags[k] for k in ("git_commit", "data_digest", "model", "test_subjects")
            if k in run.data.tags}
    # an export report from before digests were logged matches by model URI alone
    reg = register_version(client, p.registry.model_name, exp["model_uri"], exp["run_id"], tags,
                           digest=exp.get(DIGEST_TAG))
    result = {"name": p.registry.model_name, "version": reg.version, "run_id": exp["run_id"],
              "created": reg.created}
    _write_json(p.registry.report_path, result)
    log.info("%s", registration_line(result))
    return result


def _check_model_artifacts(model_uri: str, uri: str) -> None:
    """A version must never point at artifacts that are not in the store (an upload that failed
    while S3 was down): list them first, and refuse to register without a model.onnx."""
    from mlflow.artifacts import list_artifacts

    from har.logging import redact
    from har.registry.gate import RegistryError

    try:
        names = [a.path.rsplit("/", 1)[-1] for a in list_artifacts(artifact_uri=model_uri, tracking_uri=uri)]
    except Exception as err:  # MlflowException, HTTP and S3 errors alike
        raise RegistryError(f"{model_uri}: its artifacts cannot be listed in {redact(uri)} "
                            f"({redact(str(err).splitlines()[0]) if str(err) else type(err).__name__}); "
                            "nothing registered") from None
    if "model.onnx" not in names:
        raise RegistryError(f"{model_uri}: no model.onnx among its artifacts {names} in {redact(uri)}; "
                            "run `har export` again; nothing registered")


def _champion_scorer(p: Params):  # noqa: ANN202 - Callable[[ModelVersion], float | None]
    """Re-score a champion's ONNX on the current test windows: the same subjects by construction."""

    def score(mv) -> float | None:  # noqa: ANN001
        import mlflow

        from har.evaluation.metrics import classification_metrics
        from har.export.onnx import read_metadata, session
        from har.training.data import load_split_data

        pp = p.preprocess
        data = load_split_data(pp.out_dir, pp.classes)
        X, y = data.part("test")
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{p.registry.model_name}/{mv.version}"))
        onnx_path = next(local.rglob("*.onnx"), None)
        if onnx_path is None:
            return None
        meta = read_metadata(onnx_path)
        if (json.loads(meta.get("har.channels", "[]")) != data.windows.channels
                or int(meta.get("har.window_len", -1)) != X.shape[1]
                or json.loads(meta.get("har.classes", "[]")) != pp.classes):
            return None  # a different window spec: fall back to the recorded metric
        probs = session(onnx_path, threads=2).run(["probs"], {"window": X})[0]
        return float(classification_metrics(y, probs.argmax(1), pp.classes)["macro_f1"])

    return score


def promote(p: Params, version: str | None = None, policy: str = "gate") -> dict:
    """Gate the challenger (or VERSION) under ``policy`` (gate | initial | dry-run, see
    har.registry.gate.policy_mode); alias champion moves only on a gated pass. Tags say why."""
    from har.registry import gate
    from har.tracking import setup_mlflow, tracking_uri

    gate.policy_mode(policy, None)  # an unknown policy is an error before MLflow is touched
    setup_mlflow(p)
    client = gate.client_for(tracking_uri(p))
    decision = gate.promote(client, p.registry.model_name, p.registry, version=version,
                            champion_score=_champion_scorer(p), policy=policy).to_dict()
    path = p.registry.report_path
    previous = json.loads(path.read_text()) if path.is_file() else {}
    _write_json(path, {**previous, "name": p.registry.model_name, "promotion": decision})
    log.info("%s %s", p.registry.model_name, gate.promotion_line(decision))
    return decision


def rollback(p: Params) -> dict:
    """Return alias champion to the previous champion."""
    from har.registry import gate
    from har.tracking import setup_mlflow, tracking_uri

    setup_mlflow(p)
    return gate.rollback(gate.client_for(tracking_uri(p)), p.registry.model_name).to_dict()
