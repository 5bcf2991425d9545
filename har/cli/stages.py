"""The pipeline's stage commands (`har validate` … `har register`), `har run`, `har promote` and
`har rollback`. Each stage command runs the har.stages function of the dvc.yaml stage it names; its
options are dotted params keys (or `--set KEY=VALUE` for any key)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt, SetFileOpt, SetOpt, echo_summary, overrides, params, run

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
    nproc: Annotated[int, typer.Option(
        "--nproc", min=1, help="Distributed data-parallel training on N processes (torchrun; gloo on CPU, "
        "one GPU each on CUDA); the global batch stays train.batch_size.")] = 1,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage train: fit on the training subjects, early stopping on validation subjects; MLflow run.
    `--set-file reports/tune/best_params.yaml` trains with the values `har tune` found."""
    from har.training import distributed

    p = params(params_path, {"train.model": model, "train.epochs": epochs, "train.lr": lr,
                             "train.batch_size": batch_size, "train.seed": seed}, set_, set_file)
    if nproc > 1 and not distributed.is_torchrun_child():
        n = run(distributed.plan_nproc, p.train, nproc)
        if n > 1:
            run(distributed.relaunch, p.train, n, sys.argv[1:])  # replaces this process
    from har.stages import model as stage  # after the relaunch: the launcher need not import it

    out = run(stage.train, p, resume=resume)
    if out.get("rank", 0) == 0:  # under torchrun, rank 0 speaks for the run
        typer.echo(f"{out['summary']} → {out['model_path']} (MLflow run {out['run_id']})")


@app.command("evaluate")
def evaluate(
    cv: Annotated[bool, typer.Option("--cv", help="Subject k-fold protocol (evaluate.cv_*).")] = False,
    models: Annotated[list[str] | None, typer.Option("--model", help="evaluate.cv_models")] = None,
    folds: Annotated[int | None, typer.Option(help="evaluate.cv_folds")] = None,
    cv_epochs: Annotated[int | None, typer.Option(help="evaluate.cv_epochs")] = None,
    workers: Annotated[int | None, typer.Option(
        help="evaluate.cv_workers: folds as Prefect tasks on Dask (0 = one worker per CPU, or "
        "pipeline.dask_address's cluster); 1 = in turn in this process")] = None,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage evaluate: test-subject metrics and confusion matrix; --cv: the subject k-fold table."""
    from har.stages import model as stage

    given = overrides({"evaluate.cv_models": models or None, "evaluate.cv_folds": folds,
                       "evaluate.cv_epochs": cv_epochs, "evaluate.cv_workers": workers}, set_)
    p = params(params_path, given)
    if cv:
        if p.evaluate.cv_workers == 1:
            out = run(stage.evaluate_cv, p)
        else:  # one Prefect task per (model, fold) on Dask
            from flows.cv import run_cv

            out = run(run_cv, params_path=str(params_path), overrides=given or None)
        typer.echo(out["table"])
        typer.echo(f"tables in {p.evaluate.cv_out_dir}")
        return
    out = run(stage.evaluate, p)
    typer.echo(f"{out['summary']}; confusion matrix {out['confusion_png']}")


@app.command("export")
def export(
    quantize: Annotated[str | None, typer.Option(
        help="export.quantize: none, or int8 (static, calibrated on training windows)")] = None,
    ort: Annotated[bool | None, typer.Option(help="export.ort: also write the ORT format")] = None,
    set_: SetOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage export: ONNX (normalisation inside), parity check against the trained model, latency."""
    from har.stages import model as stage

    p = params(params_path, {"export.quantize": quantize, "export.ort": ort}, set_)
    echo_summary(run(stage.export, p))


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
    set_file: SetFileOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Every dvc.yaml stage in order, as `dvc repro` runs them but without DVC's caching."""
    from har.pipeline import stages_until
    from har.stages import STAGES

    p = params(params_path, {"registry.promotion_policy": "gate" if promote_ else None}, set_, set_file)
    for stage in run(stages_until, p, "validate_windows" if data_only else until):
        typer.echo(f"{stage.name}: {run(STAGES[stage.name], p)['summary']}")
