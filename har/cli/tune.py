"""`har tune`: hyperparameter search with Optuna (params.yaml ``tune``, docs/tuning.md).

With tune.workers 1 the trials run in this process; otherwise the Prefect flow ``tune`` runs them on
Dask workers (pipeline.dask_address, else a LocalCluster here), all drawing from one study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt, SetFileOpt, SetOpt, overrides, params, run

app = typer.Typer()


@app.command("tune")
def tune(
    model: Annotated[str | None, typer.Option(help="tune.model (default: train.model)")] = None,
    sampler: Annotated[str | None, typer.Option(help="tune.sampler: tpe, random or grid")] = None,
    pruner: Annotated[str | None, typer.Option(help="tune.pruner: median, hyperband or none")] = None,
    n_trials: Annotated[int | None, typer.Option(help="tune.n_trials")] = None,
    timeout_s: Annotated[float | None, typer.Option(help="tune.timeout_s")] = None,
    epochs: Annotated[int | None, typer.Option(help="tune.epochs (per trial)")] = None,
    storage: Annotated[str | None, typer.Option(help="tune.storage (an Optuna/SQLAlchemy URL)")] = None,
    study: Annotated[str | None, typer.Option(help="tune.study (default: named from the setup)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="tune.workers: parallel trials on Dask (0 = one per CPU), 1 = in this process")] = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Search train.* keys on the validation subjects (never the test subjects); the best values go
    to tune.out_dir/best_params.yaml for `har train --set-file` or `dvc exp run -S`."""
    given = overrides({"tune.model": model, "tune.sampler": sampler, "tune.pruner": pruner,
                       "tune.n_trials": n_trials, "tune.timeout_s": timeout_s, "tune.epochs": epochs,
                       "tune.storage": storage, "tune.study": study, "tune.workers": workers}, set_, set_file)
    p = params(params_path, given)
    if p.tune.workers != 1:
        from flows.tuning import tune_flow

        out = run(tune_flow, params_path=str(params_path), overrides=given or None)
    else:
        from har.stages.tune import tune as tune_stage

        out = run(tune_stage, p)
    typer.echo(out["summary"])
