"""`har pipeline …`: Prefect flows (filled in by the orchestration work)."""

from __future__ import annotations

import typer

pipeline_app = typer.Typer(help="Run and serve the Prefect flows.", no_args_is_help=True)
