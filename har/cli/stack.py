"""`har stack up | status | down | env`: the deployed stack on this machine (docs/deploy.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt
from har.cli._common import params as _params
from har.cli._common import run as _run

app = typer.Typer(help="Run PostgreSQL, S3, MLflow, Prefect (server + worker) and the API locally.",
                        no_args_is_help=True)


@app.command("up")
def up(
    only: Annotated[list[str] | None, typer.Option("--only", help="Start just these services.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Start every service (idempotent); each is health-checked before the next starts."""
    from har.stack import launcher

    p = _params(params)
    _run(launcher.up, p, params, only=only, echo=typer.echo)
    typer.echo(f'ready. Use it from a shell with: eval "$(har stack env)"   (state in {p.stack.dir}/)')


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Every service's URL and health; exit code 1 if any is down or unhealthy."""
    from har.stack import launcher

    rows = _run(launcher.status, _params(params), params)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        for r in rows:
            mark = typer.style("healthy", fg="green") if r.healthy else typer.style("DOWN", fg="red")
            typer.echo(f"{r.name:<9} {mark:<18} {r.url:<48} {r.detail}")
    if not all(r.healthy for r in rows):
        raise typer.Exit(1)


@app.command("down")
def down(
    only: Annotated[list[str] | None, typer.Option("--only", help="Stop just these services.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stop what `up` started; every database, bucket and log is kept for the next `up`."""
    from har.stack import launcher

    stopped = _run(launcher.down, _params(params), params, only=only, echo=typer.echo)
    typer.echo("nothing was running" if not stopped else f"stopped {len(stopped)} services; data kept")


@app.command("env")
def env(
    compose: Annotated[Path | None, typer.Option(
        help="Write the names compose shares with the stack (buckets, databases, work pool) here, "
             "e.g. infra/stack.env, instead of printing the client environment.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print `export …` lines that point MLflow, Prefect, boto3 and DVC at the stack."""
    from har.stack.services import client_env, layout, load_secrets, settings_env, write_env_file

    p = _params(params)
    if compose is not None:
        write_env_file(compose, settings_env(p), mode=0o644)
        typer.echo(f"wrote {compose}")
        return
    values = client_env(p, load_secrets(layout(p), create=False))
    for key, value in values.items():
        typer.echo(f"export {key}={value}")
