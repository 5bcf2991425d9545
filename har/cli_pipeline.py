"""`har pipeline …`: run the training flow, serve the deployments, check drift (Prefect).

Prefect is imported inside the commands so `har --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

pipeline_app = typer.Typer(help="Run and serve the Prefect flows.", no_args_is_help=True)

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="Path to params.yaml.")]


def _prepare() -> None:
    """The repo's flows/ package on sys.path and imported before prefect is: importing it sets the
    environment defaults and the har logger for flow runs (flows/__init__.py)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "flows" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import flows  # noqa: F401


def _parse_set(items: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value)  # "3" → 3, "[1, 2]" → list, "true" → True
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


@pipeline_app.command("run")
def run(
    model: Annotated[str | None, typer.Option(help="train.model")] = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(help="train.batch_size")] = None,
    lr: Annotated[float | None, typer.Option(help="train.lr")] = None,
    subjects: Annotated[list[int] | None, typer.Option("--subject", help="data.subjects")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Any dotted key: KEY=VALUE.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every stage.")] = False,
    stop_after: Annotated[str | None, typer.Option(help="Last stage to run, e.g. preprocess.")] = None,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Gated promotion (flow parameter promotion_policy=gate); default: initial, "
        "which only records a dry-run verdict once a champion exists.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the training flow in-process against Prefect's ephemeral API (no server needed)."""
    from har.cli import _params, _run
    from har.registry.gate import promotion_line, registration_line

    overrides = {"train.model": model, "train.epochs": epochs, "train.batch_size": batch_size,
                 "train.lr": lr, "data.subjects": subjects or None, **_parse_set(set_)}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _params(params, overrides)  # a bad key or value is a clear error before Prefect starts
    _prepare()
    from flows.training import training_pipeline

    out = _run(training_pipeline, params_path=str(params), overrides=overrides or None,
               use_cache=not no_cache, stop_after=stop_after,
               promotion_policy="gate" if promote else "initial")
    typer.echo("stages: " + ", ".join(f"{k}={v}" for k, v in out["states"].items()))
    if "register" in out:
        typer.echo(registration_line(out["register"]))
    if "metrics" in out:
        typer.echo("metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in out["metrics"].items()))
        promo = out["promotion"]
        typer.echo(f"{promotion_line(promo)} (champion before: {promo.get('champion_before')})")


@pipeline_app.command("serve")
def serve(
    limit: Annotated[int | None, typer.Option(help="Max concurrent flow runs.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register the har-retrain and drift-check deployments and run their flow runs (Ctrl-C stops)."""
    from har.cli import _params, _run

    _params(params)
    _prepare()
    from flows.deploy import serve_deployments

    _run(serve_deployments, str(params), limit)


@pipeline_app.command("deploy")
def deploy(params: ParamsOpt = Path("params.yaml")) -> None:
    """Register har-retrain (pipeline.cron + drift trigger) and drift-check on pipeline.work_pool, with
    the flow code from this checkout; a `prefect worker` on that pool runs them (PREFECT_API_URL)."""
    from har.cli import _params, _run

    p = _params(params)
    _prepare()
    from flows.deploy import deploy_to_work_pool

    ids = _run(deploy_to_work_pool, str(params))
    for name, deployment_id in ids.items():
        typer.echo(f"deployed {name} on work pool {p.pipeline.work_pool} ({deployment_id})")


@pipeline_app.command("drift")
def drift(
    recent: Annotated[Path | None, typer.Option(
        help="Inference-log folder or recordings parquet (default: serve.inference_log_dir).")] = None,
    since_hours: Annotated[float | None, typer.Option(help="Only log records this recent.")] = None,
    retrain: Annotated[bool, typer.Option(
        help="On drift, emit har.drift.detected (har-retrain's trigger then starts a run).")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compare recent inputs with the training reference (PSI or KS per channel)."""
    from har.cli import _params, _run

    _params(params)
    _prepare()
    from flows.drift import drift_check

    doc = _run(drift_check, params_path=str(params), recent=str(recent) if recent else None,
               since_hours=since_hours, trigger_retrain=retrain)
    for c in doc["channels"]:
        typer.echo(f"{c['channel']:>8}: {doc['method']}={c['stat']:.4f}"
                   f"{'  DRIFT' if c['drifted'] else ''}")
    typer.echo(json.dumps({k: doc[k] for k in ("drifted", "n_drifted", "n_recent", "report_path",
                                              "retrain_event_id")}))
    if doc["drifted"]:
        raise typer.Exit(3)
