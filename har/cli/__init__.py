"""The `har` command line. It only parses options into params and calls har.stages (or the flows,
the server, the stack launcher).

Every command module defines its own ``app`` (a typer.Typer) and is mounted here, one way: groups
by name (`har data …`, `har pipeline …`, `har stack …`), the rest at the top level. Command modules
import ``har.cli._common`` and never this package, so nothing imports in a circle; heavy libraries
are imported inside the commands, so `har --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from har.cli import data, pipeline, serve, stack, stages, tune
from har.logging import setup_logging

app = typer.Typer(help="Human activity recognition: recordings → validated windows → models → API.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data.app, name="data")
app.add_typer(stages.app)
app.add_typer(tune.app)
app.add_typer(serve.app)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(stack.app, name="stack")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    setup_logging("DEBUG" if verbose else "INFO")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
