"""`har serve` and `har predict`.

Kept import-light (no fastapi/onnxruntime/mlflow at module level): ``har --help`` and every
other command import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from har.cli._common import ParamsOpt
from har.cli._common import params as _params
from har.cli._common import run as _run
from har.config import Params

app = typer.Typer()


def _tracking_uri(p: Params) -> str:
    from har.tracking import tracking_uri

    return tracking_uri(p)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="serve.host")] = None,
    port: Annotated[int | None, typer.Option(help="serve.port")] = None,
    model_uri: Annotated[str | None, typer.Option(
        help="serve.model_uri: models:/<name>@<alias>, models:/<name>/<version> or an .onnx path")] = None,
    reload_interval: Annotated[float | None, typer.Option(help="serve.reload_interval_s")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="serve.max_body_bytes")] = None,
    max_windows: Annotated[int | None, typer.Option(help="serve.max_windows")] = None,
    smoothing_windows: Annotated[int | None, typer.Option(help="serve.smoothing_windows")] = None,
    inference_log_dir: Annotated[Path | None, typer.Option(help="serve.inference_log_dir")] = None,
    threads: Annotated[int | None, typer.Option(
        help="serve.ort_threads: ONNX Runtime intra-op threads per worker (1 is fastest for single windows)")
    ] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    openapi: Annotated[Path | None, typer.Option(
        help="Write the OpenAPI document to this path and exit (no model needed).")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Serve the model over HTTP (FastAPI on uvicorn); see docs/serving.md."""
    if openapi is not None:
        from har.serving.app import write_openapi

        typer.echo(f"wrote {_run(write_openapi, openapi)}")
        return
    p = _params(params, {"serve.host": host, "serve.port": port, "serve.model_uri": model_uri,
                         "serve.reload_interval_s": reload_interval,
                         "serve.max_body_bytes": max_body_bytes, "serve.max_windows": max_windows,
                         "serve.smoothing_windows": smoothing_windows,
                         "serve.inference_log_dir": str(inference_log_dir) if inference_log_dir else None,
                         "serve.ort_threads": threads})
    from har.serving.app import run_server

    typer.echo(f"serving {p.serve.model_uri} on http://{p.serve.host}:{p.serve.port} "
               f"(threads={p.serve.ort_threads}, workers={workers})")
    # validate.*: the sensor ranges requests are checked against, the same as for training data
    run_server(p.serve, _tracking_uri(p), intra_op_threads=p.serve.ort_threads, workers=workers,
               validate=p.validate_)


@app.command("predict")
def predict(
    files: Annotated[list[Path], typer.Argument(
        help="Canonical recordings parquet(s) or own-recordings CSV/parquet (docs/own_recordings.md).")],
    out: Annotated[Path, typer.Option(help="Timeline table; .csv or .parquet by suffix.")] = Path(
        "reports/predictions/timeline.csv"),
    plots_dir: Annotated[Path | None, typer.Option(
        help="Folder for the PNG per session (default: <out stem>_plots beside --out).")] = None,
    model_uri: Annotated[str | None, typer.Option(help="serve.model_uri")] = None,
    smoothing_windows: Annotated[int | None, typer.Option(help="serve.smoothing_windows")] = None,
    subject: Annotated[int | None, typer.Option(
        help="data.default_subject: subject id for own files without a subject column")] = None,
    acc_unit: Annotated[str | None, typer.Option(help="data.acc_unit of own files: g, m/s2 or mg")] = None,
    gyro_unit: Annotated[str | None, typer.Option(help="data.gyro_unit of own files: rad/s or deg/s")] = None,
    time_unit: Annotated[str | None, typer.Option(
        help="data.time_unit of own files' numeric timestamps: s, ms, us or ns")] = None,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads")] = 2,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Predict activity timelines for recordings on disk, with a plot per session. Own files are
    read as data.* says; a unit that does not fit the data is an error naming the likely one."""
    p = _params(params, {"serve.model_uri": model_uri, "serve.smoothing_windows": smoothing_windows,
                         "data.default_subject": subject, "data.acc_unit": acc_unit,
                         "data.gyro_unit": gyro_unit, "data.time_unit": time_unit})
    from har.serving.model import load_model
    from har.serving.predict import predict_files

    d = p.data
    model = _run(load_model, p.serve.model_uri, _tracking_uri(p), threads)
    res = _run(predict_files, files, model, out, smoothing_windows=p.serve.smoothing_windows,
               smoothing=p.serve.smoothing, switch_prob=p.serve.hmm_switch_prob, plots_dir=plots_dir,
               subject=d.default_subject, acc_unit=d.acc_unit,
               gyro_unit=d.gyro_unit, time_unit=d.time_unit, plausibility=d.plausibility)
    n_sessions = res.timeline.groupby(["file", "subject", "session"]).ngroups
    typer.echo(f"wrote {out}: {len(res.timeline)} segments in {n_sessions} sessions; "
               f"{len(res.plots)} plots in {res.plots[0].parent if res.plots else '-'}")
    for key, value in res.agreement.items():
        typer.echo(f"  {key}: agreement with labels {value:.1%}")
