"""What every `har` command shares: the --params option, params loading with overrides, and turning
expected failures into one red line and exit code 1. Imported by every command module; imports
none of them (no cycles)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from har.config import Params, load_params
from har.errors import HarError
from har.logging import redact

T = TypeVar("T")
ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="Path to params.yaml.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Any params.yaml key: KEY=VALUE (YAML value, e.g. train.lr=0.001). Repeatable.")]


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; a HarError becomes `error: …` on stderr and exit code 1 (no traceback)."""
    try:
        return fn(*args, **kwargs)
    except HarError as err:
        typer.secho(f"error: {redact(str(err))}", fg="red", err=True)
        raise typer.Exit(1) from None


def parse_set(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value)  # "3" → 3, "[1, 2]" → list, "true" → True
    return out


def overrides(given: dict[str, Any] | None = None, sets: list[str] | None = None) -> dict[str, Any]:
    """The command's options as dotted params keys (None = not given), then its --set values."""
    merged = {k: v for k, v in (given or {}).items() if v is not None}
    merged.update(parse_set(sets))
    return merged


def params(path: Path, given: dict[str, Any] | None = None, sets: list[str] | None = None) -> Params:
    """params.yaml with the command's options and --set values applied and validated."""
    return run(load_params, path, overrides(given, sets))


def echo_summary(result: dict[str, Any]) -> None:
    typer.echo(result["summary"])
