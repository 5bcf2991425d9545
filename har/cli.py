"""The `har` command line. It only parses options into params and calls har.stages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from har import cli_serve
from har.cli_pipeline import pipeline_app
from har.cli_stack import stack_app
from har.errors import HarError
from har.logging import setup_logging

app = typer.Typer(help="Human activity recognition: data → validated windows → models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Source and convert recordings.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(stack_app, name="stack")
cli_serve.register(app)

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="Path to params.yaml.")]


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Turn expected failures into a short message and exit code 1 (no traceback)."""
    try:
        return fn(*args, **kwargs)
    except HarError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(1) from None


def _params(path: Path, overrides: dict[str, Any] | None = None):  # noqa: ANN202
    from har.config import load_params

    return _run(load_params, path, overrides)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    setup_logging("DEBUG" if verbose else "INFO")


MIRROR_ENV = "HAR_DATA_MIRROR"  # har.config.MIRROR_ENV, repeated so --help needs no import


@data_app.command("fetch")
def fetch(
    dataset: Annotated[str | None, typer.Argument(help="Dataset name (params: data.dataset).")] = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", envvar=MIRROR_ENV,
        help="A folder holding DATASET/, or an s3://bucket/prefix lake (see `har data push`).",
    )] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Get a verified copy of DATASET into data.raw_dir (local copy, mirror, or download)."""
    from har import stages

    p = _params(params, {"data.dataset": dataset})
    path = _run(stages.fetch, p, mirror)
    typer.echo(f"verified dataset at {path}")


@data_app.command("push")
def push(
    dataset: Annotated[str | None, typer.Argument(help="Dataset name (params: data.dataset).")] = None,
    to: Annotated[str | None, typer.Option(
        "--to", envvar=MIRROR_ENV, show_default=False,
        help="The lake, s3://bucket/prefix (default: $HAR_DATA_MIRROR when it is one).",
    )] = None,
    own: Annotated[list[Path] | None, typer.Option(
        "--own", help="Also upload this canonical parquet from `har data import` (repeatable).",
    )] = None,
    create_bucket: Annotated[bool, typer.Option(
        "--create-bucket", help="Create the bucket if it does not exist.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Upload the verified copy of DATASET (and own recordings) to the S3 lake; objects already
    there with the same sha256 are skipped."""
    from har import stages

    if not to:
        typer.secho("error: no destination: pass --to s3://bucket/prefix (or set "
                    f"{MIRROR_ENV} to one)", fg="red", err=True)
        raise typer.Exit(1)
    p = _params(params, {"data.dataset": dataset})
    r = _run(stages.push, p, to, own, create_bucket=create_bucket)
    typer.echo(f"{r.url}: {len(r.uploaded)} uploaded ({r.bytes_uploaded / 1e6:.1f} MB), "
               f"{len(r.unchanged)} unchanged")


@data_app.command("ingest")
def ingest(
    subjects: Annotated[list[int] | None, typer.Option("--subject", help="data.subjects")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Convert the raw dataset into the canonical recordings parquet (data.interim_path)."""
    from har import stages

    p = _params(params, {"data.subjects": subjects or None})
    path = _run(stages.ingest, p)
    typer.echo(f"wrote {path}")


@data_app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="CSV/parquet files in the own-recordings schema.")],
    out: Annotated[Path, typer.Option(help="Output canonical parquet.")] = Path(
        "data/interim/own_recordings.parquet"),
    subject: Annotated[int, typer.Option(help="Subject id when the files have no subject column.")] = 0,
    acc_unit: Annotated[str, typer.Option(help="g or m/s2")] = "g",
    gyro_unit: Annotated[str, typer.Option(help="rad/s or deg/s")] = "rad/s",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Convert your own phone/watch exports (docs/own_recordings.md) to the canonical form."""
    from har import stages

    p = _params(params)
    path = _run(stages.import_own, p, paths, out, subject=subject, acc_unit=acc_unit,
                gyro_unit=gyro_unit)
    typer.echo(f"wrote {path}")


@app.command("validate")
def validate(
    windows: Annotated[bool, typer.Option("--windows", help="Validate processed windows too.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the Great Expectations suites; non-zero exit and a short report on failure."""
    from har import stages

    p = _params(params)
    report = _run(stages.validate, p, windows=windows)
    typer.echo(report)


@app.command("preprocess")
def preprocess(
    window_s: Annotated[float | None, typer.Option(help="preprocess.window_s")] = None,
    overlap: Annotated[float | None, typer.Option(help="preprocess.overlap")] = None,
    gravity_split: Annotated[bool | None, typer.Option(help="preprocess.gravity_split")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Resample, window, normalise and split by subject into preprocess.out_dir."""
    from har import stages

    p = _params(params, {"preprocess.window_s": window_s, "preprocess.overlap": overlap,
                         "preprocess.gravity_split": gravity_split})
    stats = _run(stages.preprocess, p)
    typer.echo(f"{stats['n_windows']} windows written to {p.preprocess.out_dir}")


PolicyOpt = Annotated[str, typer.Option(
    "--policy", help="Promotion policy: gate (move champion if the gate passes), initial (gate only "
    "while there is no champion, else dry run), dry-run (record the verdict only).")]
PromoteFlag = Annotated[bool, typer.Option(
    "--promote", help="Gated promotion (policy gate); default: policy initial, which never moves "
    "an existing champion.")]


@app.command("run")
def run_all(
    data_only: Annotated[bool, typer.Option("--data-only", help="Stop after preprocess.")] = False,
    promote_: PromoteFlag = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """The whole pipeline: fetch → ingest → validate → preprocess → train → evaluate → export →
    register → promote (what `dvc repro` runs, without DVC's caching; policy initial)."""
    from har import stages
    from har.registry.gate import promotion_line, registration_line

    p = _params(params)
    _run(stages.fetch, p)
    _run(stages.ingest, p)
    typer.echo(_run(stages.validate, p, windows=False))
    stats = _run(stages.preprocess, p)
    typer.echo(_run(stages.validate, p, windows=True))
    typer.echo(f"{stats['n_windows']} windows in {p.preprocess.out_dir}")
    if data_only:
        return
    trained = _run(stages.train, p)
    typer.echo(f"trained {trained['model']}: val macro-F1 {trained['val_macro_f1']:.4f}")
    ev = _run(stages.evaluate, p)
    typer.echo(f"test macro-F1 {ev['macro_f1']:.4f}, accuracy {ev['accuracy']:.4f}")
    ex = _run(stages.export, p)
    typer.echo(f"exported {ex['onnx_path']} (parity {ex['parity_max_abs_diff']:.1e})")
    reg = _run(stages.register, p)
    typer.echo(registration_line(reg))
    d = _run(stages.promote, p, reg["version"], "gate" if promote_ else "initial")
    typer.echo(f"{reg['name']} {promotion_line(d)}")


@app.command("train")
def train(
    model: Annotated[str | None, typer.Option(help="train.model: classic|cnn1d|deepconvlstm|tinyhar")] = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs")] = None,
    lr: Annotated[float | None, typer.Option(help="train.lr")] = None,
    batch_size: Annotated[int | None, typer.Option(help="train.batch_size")] = None,
    seed: Annotated[int | None, typer.Option(help="train.seed")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Train a model on the training subjects; early stopping on validation subjects; MLflow run."""
    from har import stages

    p = _params(params, {"train.model": model, "train.epochs": epochs, "train.lr": lr,
                         "train.batch_size": batch_size, "train.seed": seed})
    out = _run(stages.train, p, resume=resume)
    typer.echo(f"{out['model']}: val macro-F1 {out['val_macro_f1']:.4f} (best epoch {out['best_epoch']}), "
               f"{out['n_params']:,} parameters → {out['model_path']} (MLflow run {out['run_id']})")


@app.command("evaluate")
def evaluate(
    cv: Annotated[bool, typer.Option("--cv", help="Subject k-fold protocol (evaluate.cv_*).")] = False,
    models: Annotated[list[str] | None, typer.Option("--model", help="evaluate.cv_models")] = None,
    folds: Annotated[int | None, typer.Option(help="evaluate.cv_folds")] = None,
    cv_epochs: Annotated[int | None, typer.Option(help="evaluate.cv_epochs")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Test-subject metrics and confusion matrix, or with --cv the subject k-fold table."""
    from har import stages

    p = _params(params, {"evaluate.cv_models": models or None, "evaluate.cv_folds": folds,
                         "evaluate.cv_epochs": cv_epochs})
    if cv:
        out = _run(stages.evaluate_cv, p)
        typer.echo(out["table"])
        typer.echo(f"tables in {p.evaluate.cv_out_dir}")
        return
    out = _run(stages.evaluate, p)
    typer.echo(f"test subjects {out['test_subjects']}: accuracy {out['accuracy']:.4f}, "
               f"macro-F1 {out['macro_f1']:.4f}; confusion matrix {out['confusion_png']}")


@app.command("export")
def export(params: ParamsOpt = Path("params.yaml")) -> None:
    """ONNX export (normalisation inside), parity check against the trained model, latency."""
    from har import stages

    out = _run(stages.export, _params(params))
    typer.echo(f"{out['onnx_path']}: parity max abs diff {out['parity_max_abs_diff']:.2e}, "
               f"batch-1 p50 {out['latency_p50_ms']:.3f} ms")


@app.command("register")
def register(params: ParamsOpt = Path("params.yaml")) -> None:
    """Register the exported model as a new version with alias challenger (once: a model that is
    already registered is reported, not registered again)."""
    from har import stages
    from har.registry.gate import registration_line

    out = _run(stages.register, _params(params))
    typer.echo(registration_line(out))


@app.command("promote")
def promote(
    version: Annotated[str | None, typer.Option(help="Version to gate (default: the challenger).")] = None,
    policy: PolicyOpt = "gate",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Same as --policy dry-run: tag the verdict, move no alias.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Gate the challenger (or --version) and move alias champion if it passes (registry.*);
    --policy initial|dry-run or --dry-run may only record the verdict as tags."""
    from har import stages
    from har.registry.gate import promotion_line

    d = _run(stages.promote, _params(params), version, "dry-run" if dry_run else policy)
    typer.echo(promotion_line(d))


@app.command("rollback")
def rollback(params: ParamsOpt = Path("params.yaml")) -> None:
    """Return alias champion to the previous champion."""
    from har import stages

    d = _run(stages.rollback, _params(params))
    typer.echo(d["reasons"][0])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
