"""What every `har` command shares: the --params option, params loading with overrides, and turning
expected failures into one red line and exit code 1. Imported by every command module; imports
none of them (no cycles)."""

from __future__ import annotations

import errno
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
SetFileOpt = Annotated[Path | None, typer.Option(
    "--set-file", help="A YAML mapping of dotted params keys to values, applied before --set "
    "(e.g. reports/tune/best_params.yaml from `har tune`).")]


# The disk refusing a write: no space, a quota, or a file-size limit (RLIMIT_FSIZE).
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_failure(err: BaseException) -> str | None:
    """What could not be written, if ``err`` or what led to it is the disk refusing a write: an
    OSError, or SQLite's (MLflow's store) under a wrapper or two. None for any other error."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _STORAGE_ERRNOS:
            return f"{cur.filename}: {cur.strerror}" if cur.filename else str(cur.strerror)
        name = str(getattr(cur, "sqlite_errorname", ""))
        if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR_WRITE"):
            return f"the SQLite database cannot be written ({cur})"
        cur = cur.__cause__ or cur.__context__
    return None


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; a HarError, or the disk refusing a write, becomes one `error: …` line on
    stderr and exit code 1 (no traceback)."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        # before HarError: a wrapper's message (e.g. "run not in the tracking store") would misname it
        failure = storage_failure(err)
        if failure is not None:
            typer.secho(f"error: {fn.__name__}: {redact(failure)}: the disk refused a write (full, or a "
                        "file-size limit); free space and re-run. Output files are replaced only once "
                        "written in full: the previous ones are intact.", fg="red", err=True)
            raise typer.Exit(1) from None
        if isinstance(err, HarError):
            typer.secho(f"error: {redact(str(err))}", fg="red", err=True)
            raise typer.Exit(1) from None
        raise


def parse_set(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value)  # "3" → 3, "[1, 2]" → list, "true" → True
    return out


def read_set_file(path: Path) -> dict[str, Any]:
    """A --set-file: a YAML mapping of dotted keys (``train.lr: 0.003``); BadParameter otherwise."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise typer.BadParameter(f"{path}: {err}", param_hint="--set-file") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise typer.BadParameter(f"{path}: expected a mapping of dotted params keys to values",
                                 param_hint="--set-file")
    return doc


def overrides(given: dict[str, Any] | None = None, sets: list[str] | None = None,
              set_file: Path | None = None) -> dict[str, Any]:
    """The command's options as dotted params keys (None = not given), then --set-file's values,
    then its --set values."""
    merged = {k: v for k, v in (given or {}).items() if v is not None}
    if set_file is not None:
        merged.update(read_set_file(set_file))
    merged.update(parse_set(sets))
    return merged


def params(path: Path, given: dict[str, Any] | None = None, sets: list[str] | None = None,
           set_file: Path | None = None) -> Params:
    """params.yaml with the command's options, --set-file and --set values applied and validated."""
    return run(load_params, path, overrides(given, sets, set_file))


def echo_summary(result: dict[str, Any]) -> None:
    typer.echo(result["summary"])
