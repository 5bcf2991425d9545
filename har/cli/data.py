"""`har data …`: source and convert recordings (the fetch and ingest stages, the lake, own files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt, echo_summary, params, run
from har.config import MIRROR_ENV

app = typer.Typer(help="Source and convert recordings.", no_args_is_help=True)
SourceArg = Annotated[str | None, typer.Argument(
    help="data.source: a dataset name (hapt), or own for the recordings in data.own_dir.")]
DatasetArg = Annotated[str | None, typer.Argument(help="Dataset name (params: data.source).")]
# how own recordings are written: the same data.* keys as `har predict`'s options
SubjectOpt = Annotated[int | None, typer.Option(
    "--subject", help="data.default_subject: subject id of files without a subject column")]
AccUnitOpt = Annotated[str | None, typer.Option("--acc-unit", help="data.acc_unit: g, m/s2 or mg")]
GyroUnitOpt = Annotated[str | None, typer.Option("--gyro-unit", help="data.gyro_unit: rad/s or deg/s")]
TimeUnitOpt = Annotated[str | None, typer.Option(
    "--time-unit", help="data.time_unit of numeric timestamps: s, ms, us or ns")]


@app.command("fetch")
def fetch(
    source: SourceArg = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", envvar=MIRROR_ENV,
        help="A folder holding DATASET/, or an s3://bucket/prefix lake (see `har data push`).",
    )] = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage fetch: a verified copy of SOURCE in data.raw_dir (local copy, mirror, or download; for
    own, a snapshot of data.own_dir)."""
    from har.stages import data

    echo_summary(run(data.fetch, params(params_path, {"data.source": source}), mirror))


@app.command("push")
def push(
    dataset: DatasetArg = None,
    to: Annotated[str | None, typer.Option(
        "--to", envvar=MIRROR_ENV, show_default=False,
        help="The lake, s3://bucket/prefix (default: $HAR_DATA_MIRROR when it is one).",
    )] = None,
    own: Annotated[list[Path] | None, typer.Option(
        "--own", help="Also upload this canonical parquet from `har data import` (repeatable).",
    )] = None,
    create_bucket: Annotated[bool, typer.Option(
        "--create-bucket", help="Create the bucket if it does not exist.")] = False,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Upload the verified copy of DATASET (and own recordings) to the S3 lake; objects already
    there with the same sha256 are skipped."""
    from har.stages import data

    if not to:
        typer.secho(f"error: no destination: pass --to s3://bucket/prefix (or set {MIRROR_ENV} to one)",
                    fg="red", err=True)
        raise typer.Exit(1)
    p = params(params_path, {"data.source": dataset})
    r = run(data.push, p, to, own, create_bucket=create_bucket)
    typer.echo(f"{r.url}: {len(r.uploaded)} uploaded ({r.bytes_uploaded / 1e6:.1f} MB), "
               f"{len(r.unchanged)} unchanged")


@app.command("ingest")
def ingest(
    subjects: Annotated[list[int] | None, typer.Option("--subject", help="data.subjects")] = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Stage ingest: the raw copy of data.source → the canonical recordings parquet
    (data.interim_path)."""
    from har.stages import data

    echo_summary(run(data.ingest, params(params_path, {"data.subjects": subjects or None})))


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="CSV/parquet files in the own-recordings schema.")],
    out: Annotated[Path, typer.Option(help="Output canonical parquet.")] = Path(
        "data/interim/own_recordings.parquet"),
    subject: SubjectOpt = None,
    acc_unit: AccUnitOpt = None,
    gyro_unit: GyroUnitOpt = None,
    time_unit: TimeUnitOpt = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Convert your own phone/watch exports (docs/own_recordings.md) to the canonical form; a unit
    that does not fit the data (gravity far from 1 g, an implausible rate) is an error naming it."""
    from har.stages import data

    p = params(params_path, {"data.default_subject": subject, "data.acc_unit": acc_unit,
                             "data.gyro_unit": gyro_unit, "data.time_unit": time_unit})
    path = run(data.import_own, p, paths, out)
    typer.echo(f"wrote {path}")
