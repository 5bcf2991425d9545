"""The pipeline's stage commands (`har validate` … `har register`), `har run`, `har promote` and
`har rollback`. Each stage command runs the har.stages function of the dvc.yaml stage it names; its
options are dotted params keys (or `--set KEY=VALUE` for any key)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt, SetOpt, echo_summary, params, run

app = typer.Typer()

PolicyOpt = Annotated[str | None, typer.Option(
    "--policy", help="registry.promotion_policy: gate (move champion if the gate passes), initial (gate "
    "only while there is no champion, else dry run), dry-run (record the verdict only).")]
PromoteFlag = Annotated[bool, typer.Option(
    "--promote", help="Gated promotion (registry.promotion_policy=gate); default: params.yaml's policy "
    "(initial: never moves an existing champion).")]


@app.command("validate")
def validate(
    windows: Annotated[bool, typer.Option(help="Stage validate_windows: the windows suite.")] = False,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage validate (or validate_windows): Great Expectations suites; exit 1 and a short report on
    failure, the full one beside validate.report_path."""
    from har.stages import data

    p = params(params_path, sets=set_)
    echo_summary(run(data.validate_windows if windows else data.validate, p))


@app.command("preprocess")
def preprocess(
    window_s: Annotated[float | None, typer.Option(help="preprocess.window_s")] = None,
    overlap: Annotated[float | None, typer.Option(help="preprocess.overlap")] = None,
    gravity_split: Annotated[bool | None, typer.Option(help="preprocess.gravity_split")] = None,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage preprocess: resample, window, normalise and split by subject into preprocess.out_dir."""
    from har.stages import data

    p = params(params_path, {"preprocess.window_s": window_s, "preprocess.overlap": overlap,
                             "preprocess.gravity_split": gravity_split}, set_)
    echo_summary(run(data.preprocess, p))


@app.command("train")
def train(
    model: Annotated[str | None, typer.Option(help="train.model (see docs/models.md)")] = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs")] = None,
    lr: Annotated[float | None, typer.Option(help="train.lr")] = None,
    batch_size: Annotated[int | None, typer.Option(help="train.batch_size")] = None,
    seed: Annotated[int | None, typer.Option(help="train.seed")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage train: fit on the training subjects, early stopping on validation subjects; MLflow run."""
    from har.stages import model as stage

    p = params(params_path, {"train.model": model, "train.epochs": epochs, "train.lr": lr,
                             "train.batch_size": batch_size, "train.seed": seed}, set_)
    out = run(stage.train, p, resume=resume)
    typer.echo(f"{out['summary']} → {out['model_path']} (MLflow run {out['run_id']})")


@app.command("evaluate")
def evaluate(
    cv: Annotated[bool, typer.Option("--cv", help="Subject k-fold protocol (evaluate.cv_*).")] = False,
    models: Annotated[list[str] | None, typer.Option("--model", help="evaluate.cv_models")] = None,
    folds: Annotated[int | None, typer.Option(help="evaluate.cv_folds")] = None,
    cv_epochs: Annotated[int | None, typer.Option(help="evaluate.cv_epochs")] = None,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage evaluate: test-subject metrics and confusion matrix; --cv: the subject k-fold table."""
    from har.stages import model as stage

    p = params(params_path, {"evaluate.cv_models": models or None, "evaluate.cv_folds": folds,
                             "evaluate.cv_epochs": cv_epochs}, set_)
    if cv:
        out = run(stage.evaluate_cv, p)
        typer.echo(out["table"])
        typer.echo(f"tables in {p.evaluate.cv_out_dir}")
        return
    out = run(stage.evaluate, p)
    typer.echo(f"{out['summary']}; confusion matrix {out['confusion_png']}")


@app.command("export")
def export(set_: SetOpt = None, params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Stage export: ONNX (normalisation inside), parity check against the trained model, latency."""
    from har.stages import model as stage

    echo_summary(run(stage.export, params(params_path, sets=set_)))


@app.command("register")
def register(
    policy: PolicyOpt = None,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage register: a new version with alias challenger (idempotent), then the promotion policy."""
    from har.stages import registry

    echo_summary(run(registry.register, params(params_path, {"registry.promotion_policy": policy}, set_)))


@app.command("promote")
def promote(
    version: Annotated[str | None, typer.Option(help="Version to gate (default: the challenger).")] = None,
    policy: Annotated[str, typer.Option(
        "--policy", help="gate (default for an explicit promote), initial or dry-run.")] = "gate",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Same as --policy dry-run: tag the verdict, move no alias.")] = False,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Gate the challenger (or --version) and move alias champion if it passes (registry.*)."""
    from har.registry.gate import promotion_line
    from har.stages import registry

    d = run(registry.promote, params(params_path), version, "dry-run" if dry_run else policy)
    typer.echo(promotion_line(d))


@app.command("rollback")
def rollback(params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Return alias champion to the previous champion."""
    from har.stages import registry

    typer.echo(run(registry.rollback, params(params_path))["reasons"][0])


@app.command("run")
def run_all(
    until: Annotated[str | None, typer.Option(help="Last stage to run (a dvc.yaml stage).")] = None,
    data_only: Annotated[bool, typer.Option(help="Same as --until validate_windows.")] = False,
    promote_: PromoteFlag = False,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Every dvc.yaml stage in order, as `dvc repro` runs them but without DVC's caching."""
    from har.pipeline import stages_until
    from har.stages import STAGES

    p = params(params_path, {"registry.promotion_policy": "gate" if promote_ else None}, set_)
    for stage in run(stages_until, p, "validate_windows" if data_only else until):
        typer.echo(f"{stage.name}: {run(STAGES[stage.name], p)['summary']}")
