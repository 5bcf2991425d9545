"""`har pipeline …`: run the training flow, deploy or serve the deployments, check drift (Prefect).

Prefect (and the flows package, which sets the environment every flow process needs) is imported
inside the commands, so `har --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from har.cli._common import ParamsOpt, SetFileOpt, SetOpt, overrides, params, run

app = typer.Typer(help="Run, deploy and serve the Prefect flows.", no_args_is_help=True)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


@app.command("run")
def run_flow(
    model: Annotated[str | None, typer.Option(help="train.model")] = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(help="train.batch_size")] = None,
    lr: Annotated[float | None, typer.Option(help="train.lr")] = None,
    subjects: Annotated[list[int] | None, typer.Option("--subject", help="data.subjects")] = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every stage.")] = False,
    stop_after: Annotated[str | None, typer.Option(help="Last stage to run (a dvc.yaml stage).")] = None,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Gated promotion (registry.promotion_policy=gate); default: params.yaml's "
        "policy (initial: only records a dry-run verdict once a champion exists).")] = False,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """The training flow in-process (Prefect's ephemeral API unless PREFECT_API_URL is set)."""
    from har.registry.gate import promotion_line, registration_line

    given = overrides({"train.model": model, "train.epochs": epochs, "train.batch_size": batch_size,
                       "train.lr": lr, "data.subjects": subjects or None,
                       "registry.promotion_policy": "gate" if promote else None}, set_, set_file)
    params(params_path, given)  # a bad key or value fails here, before Prefect starts
    from flows.training import training_pipeline

    out = run(training_pipeline, params_path=str(params_path), overrides=given or None,
              use_cache=not no_cache, stop_after=stop_after)
    typer.echo("stages: " + ", ".join(f"{k}={v}" for k, v in out["states"].items()))
    if "register" in out:
        typer.echo(registration_line(out["register"]))
        typer.echo("metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in out["metrics"].items()))
        promo = out["promotion"]
        typer.echo(f"{promotion_line(promo)} (champion before: {promo.get('champion_before')})")


@app.command("serve")
def serve(
    limit: Annotated[int | None, typer.Option(help="Max concurrent flow runs.")] = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register the har-retrain, drift-check and har-tune deployments and run their flow runs in this
    process (the single-process alternative to `deploy` + a worker; Ctrl-C stops)."""
    params(params_path)
    from flows.deploy import serve_deployments

    run(serve_deployments, str(params_path), limit)


@app.command("deploy")
def deploy(params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Register har-retrain (pipeline.cron + drift trigger), drift-check and har-tune (on demand) on
    pipeline.work_pool, with the flow code from this checkout; a `prefect worker` on that pool runs
    them (PREFECT_API_URL)."""
    p = params(params_path)
    from flows.deploy import deploy_to_work_pool

    for name, deployment_id in run(deploy_to_work_pool, str(params_path)).items():
        typer.echo(f"deployed {name} on work pool {p.pipeline.work_pool} ({deployment_id})")


@app.command("drift")
def drift(
    recent: Annotated[Path | None, typer.Option(
        help="Inference-log folder or recordings parquet (default: serve.inference_log_dir).")] = None,
    since_hours: Annotated[float | None, typer.Option(help="Only log records this recent.")] = None,
    retrain: Annotated[bool, typer.Option(
        help="On drift, emit har.drift.detected (har-retrain's trigger then starts a run).")] = False,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compare recent inputs with the training reference (PSI or KS per channel); exit 3 on drift."""
    params(params_path)
    from flows.drift import drift_check

    doc = run(drift_check, params_path=str(params_path), recent=str(recent) if recent else None,
              since_hours=since_hours, trigger_retrain=retrain)
    for c in doc["channels"]:
        typer.echo(f"{c['channel']:>8}: {doc['method']}={c['stat']:.4f}{'  DRIFT' if c['drifted'] else ''}")
    typer.echo(json.dumps({k: doc[k] for k in ("drifted", "n_drifted", "n_recent", "report_path",
                                              "retrain_event_id")}))
    if doc["drifted"]:
        raise typer.Exit(3)
