"""The HTTP API: ``create_app(serve_params)`` → FastAPI app serving the ONNX model.

Hot path choices (see docs/serving.md#performance): the body is read once with a size cap,
parsed by orjson and turned into numpy with ``np.asarray``; pydantic validates only the small
envelope fields. Small requests run the session inline on the event loop (a thread-pool hop
costs more than a tiny model's inference); big ones go to a worker thread. Responses are
serialised by orjson. Nothing here logs per request except the inference log, which a
background thread writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from har.config import ServeParams
from har.preprocess.signal import resample_factors
from har.serving import schemas
from har.serving.inference_log import InferenceLogWriter, make_record
from har.serving.model import LoadedModel, ModelHolder
from har.serving.timeline import predict_timeline

log = logging.getLogger(__name__)

INLINE_MAX_WINDOWS = 32  # above this, inference moves off the event loop
CONFIG_ENV = "HAR_SERVE_CONFIG"  # JSON handed to worker processes by `run_server(workers>1)`


class PayloadError(Exception):
    """A request the client must fix: becomes ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


async def read_json_body(request: Request, limit: int) -> Any:
    """The body as JSON, refusing more than ``limit`` bytes by Content-Length *and* while streaming
    (a chunked or lying client cannot get past the cap)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise PayloadError(400, f"invalid Content-Length header {declared!r}") from None
        if n > limit:
            raise PayloadError(413, f"request body is {n} bytes; the limit is {limit} bytes "
                                    "(serve.max_body_bytes); send fewer windows per request")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(413, f"request body exceeds the limit of {limit} bytes "
                                    "(serve.max_body_bytes); send fewer windows per request")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise PayloadError(422, "empty request body; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson is strict JSON; Python's json also reads NaN/Infinity literals, which clients such
    # as Python's json.dumps emit. Accept them here so the error below can say "NaN" precisely.
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(422, f"request body is not valid JSON: {err}") from None


def _envelope(model: type[BaseModel], obj: Any) -> Any:
    if not isinstance(obj, dict):
        raise PayloadError(422, f"expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        raise PayloadError(422, format_validation_errors(err.errors())) from None


def format_validation_errors(errors: Any) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def numeric_array(value: Any, field: str, ndim: int, shape_hint: str) -> np.ndarray:
    """Nested JSON lists → float32 array of ``ndim`` dims; PayloadError naming the problem."""
    if not isinstance(value, list):
        raise PayloadError(422, f"{field}: expected a nested list ({shape_hint}), "
                                f"got {type(value).__name__}")
    try:
        # No dtype: numpy then reports strings/None as their own dtypes instead of coercing "1.5".
        arr = np.asarray(value)
    except ValueError:
        raise PayloadError(422, f"{field}: ragged nested lists; expected a rectangular "
                                f"{shape_hint} array") from None
    if arr.size == 0:
        raise PayloadError(422, f"{field}: empty; expected {shape_hint}")
    if arr.ndim != ndim:
        raise PayloadError(422, f"{field}: expected {ndim} nesting levels ({shape_hint}), got "
                                f"shape {list(arr.shape)}")
    if arr.dtype.kind not in "fiu":
        bad = "null" if arr.dtype == object and any(v is None for v in arr.ravel().tolist()) \
            else "non-numeric"
        raise PayloadError(422, f"{field}: contains {bad} values; only finite numbers are accepted")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        idx = np.unravel_index(int(np.argmin(finite)), out.shape)
        where = "".join(f"[{i}]" for i in idx)
        raise PayloadError(422, f"{field}{where}: NaN or infinite value (or beyond float32 range); "
                                "only finite numbers are accepted")
    return out


def channel_order(given: list[str], model: LoadedModel) -> np.ndarray | None:
    """Column indices that reorder ``given`` into the model's channel order (None if identical)."""
    expected = model.spec.channels
    if len(set(given)) != len(given):
        dup = sorted({c for c in given if given.count(c) > 1})
        raise PayloadError(422, f"channels: duplicate names {dup}")
    unknown = [c for c in given if c not in expected]
    if unknown:
        raise PayloadError(422, f"channels: unknown {unknown}; the model uses {expected}")
    missing = [c for c in expected if c not in given]
    if missing:
        raise PayloadError(422, f"channels: missing required {missing}; the model uses {expected}")
    if given == expected:
        return None
    pos = {c: i for i, c in enumerate(given)}
    return np.array([pos[c] for c in expected])


def _check_columns(arr: np.ndarray, channels: list[str], field: str) -> None:
    if arr.shape[-1] != len(channels):
        raise PayloadError(422, f"{field}: each sample has {arr.shape[-1]} values but "
                                f"{len(channels)} channels are named {channels}")


def create_app(serve: ServeParams | None = None, *, tracking_uri: str | None = None,
               intra_op_threads: int | None = None, holder: ModelHolder | None = None,
               inference_log: bool = True) -> FastAPI:
    """The API for ``serve`` (params.yaml ``serve``). The model loads in the background at
    startup, then every ``serve.reload_interval_s`` the URI is re-resolved and reloaded if moved.
    ``intra_op_threads`` defaults to ``serve.ort_threads``."""
    serve = serve or ServeParams()
    threads = serve.ort_threads if intra_op_threads is None else intra_op_threads
    holder = holder or ModelHolder(serve.model_uri, tracking_uri, threads)
    state: dict[str, Any] = {"writer": None}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if inference_log:
            state["writer"] = InferenceLogWriter(serve.inference_log_dir)

        async def poll() -> None:
            while True:
                try:
                    await run_in_threadpool(holder.refresh)
                except Exception:  # never let the poller die: the next tick tries again
                    log.exception("model refresh failed")
                await asyncio.sleep(serve.reload_interval_s)

        task = asyncio.create_task(poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if state["writer"] is not None:
                state["writer"].close()

    app = FastAPI(title="har serving", version="1", lifespan=lifespan,
                  description="Human activity recognition from raw IMU windows (docs/serving.md).")
    app.state.holder = holder
    app.state.serve = serve

    @app.exception_handler(PayloadError)
    async def _payload_error(request: Request, exc: PayloadError) -> Response:
        return _json({"detail": exc.message}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _json({"detail": format_validation_errors(exc.errors())}, 422)

    def _model() -> LoadedModel:
        model = holder.current  # one read: this request keeps this object even if a reload swaps
        if model is None:
            reason = holder.last_error or "model is still loading"
            raise PayloadError(503, f"no model loaded: {reason}")
        return model

    def _log(endpoint: str, model: LoadedModel, windows: np.ndarray, pred: np.ndarray) -> None:
        writer = state["writer"]
        if writer is not None:
            classes = model.spec.classes
            writer.write(make_record(endpoint, model.version, model.spec.channels, windows,
                                     [classes[i] for i in pred.tolist()]))

    async def _infer(model: LoadedModel, windows: np.ndarray) -> np.ndarray:
        if len(windows) <= INLINE_MAX_WINDOWS:
            return model.predict_proba(windows)
        return await run_in_threadpool(model.predict_proba, windows)

    err = {422: {"model": schemas.ErrorResponse}, 413: {"model": schemas.ErrorResponse},
           503: {"model": schemas.ErrorResponse}}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (says nothing about the model)."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": schemas.ErrorResponse}})
    async def readyz() -> Response:
        """200 once a model is loaded, 503 (with the load error) before that. While the model source
        (the MLflow server, or the file) cannot be reached, the loaded model keeps serving: still
        200, with ``source`` saying why it is not being refreshed."""
        model = holder.current
        if model is None:
            return _json({"detail": f"no model loaded: {holder.last_error or 'loading'}"}, 503)
        source = "ok" if holder.last_error is None else f"unreachable, serving the loaded model: " \
                                                           f"{holder.last_error}"
        return _json({"status": "ready", "version": model.version, "source": source})

    async def _parse(request: Request, envelope: type[BaseModel], field: str, ndim: int,
                     shape: str) -> tuple[Any, LoadedModel, Any, np.ndarray]:
        """Body → (envelope, current model, channel reorder, the numeric array named ``field``)."""
        env = _envelope(envelope, await read_json_body(request, app.state.serve.max_body_bytes))
        model = _model()
        order = channel_order(env.channels, model)
        return env, model, order, numeric_array(getattr(env, field), field, ndim, shape)

    @app.get("/v1/model", response_model=schemas.ModelInfo, responses=err)
    async def model_info() -> Response:
        """The served model: registry name/version, classes, channels, window spec, test metrics."""
        return _json(_model().info())

    @app.post("/v1/predict", response_model=schemas.PredictResponse, responses=err,
              openapi_extra=_body_ref("PredictRequest"))
    async def predict(request: Request) -> Response:
        """Classify one or more raw windows (window_len samples each, any channel order)."""
        serve_ = app.state.serve
        env, model, order, x = await _parse(request, schemas.PredictEnvelope, "windows", 3,
                                            "n × window_len × channels")
        spec = model.spec
        if len(x) > serve_.max_windows:
            raise PayloadError(422, f"windows: {len(x)} windows; at most {serve_.max_windows} "
                                    "per request (serve.max_windows)")
        if x.shape[1] != spec.window_len:
            raise PayloadError(422, f"windows: each window must have exactly {spec.window_len} samples "
                                    f"({spec.window_s} s at {spec.rate_hz} Hz); got {x.shape[1]}")
        _check_columns(x, env.channels, "windows")
        if order is not None:
            x = x[:, :, order]
        probs = await _infer(model, x)
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(len(pred)), pred]
        classes = spec.classes
        out = []
        for i, (p, c) in enumerate(zip(pred.tolist(), conf.tolist(), strict=True)):
            item: dict[str, Any] = {"activity": classes[p], "class_id": p, "confidence": c}
            if env.return_probs:
                item["probs"] = probs[i]
            out.append(item)
        _log("/v1/predict", model, x, pred)
        return _json({"model": {"name": model.name, "version": model.version}, "classes": classes,
                      "predictions": out})

    @app.post("/v1/predict/recording", response_model=schemas.RecordingResponse, responses=err,
              openapi_extra=_body_ref("RecordingRequest"))
    async def predict_recording(request: Request) -> Response:
        """Timeline for a continuous recording at any rate: resample, window, predict, smooth, merge."""
        serve_ = app.state.serve
        env, model, order, x = await _parse(request, schemas.RecordingEnvelope, "samples", 2,
                                            "N samples × channels")
        spec = model.spec
        try:  # the resampler's size is bounded before anything is allocated for it
            resample_factors(env.rate_hz, spec.rate_hz)
        except ValueError as err:
            raise PayloadError(422, f"rate_hz: {err}") from None
        _check_columns(x, env.channels, "samples")
        if order is not None:
            x = x[:, order]
        # Length after resampling (resample_poly's ceil) decides the windows; check before the work.
        n_model = math.ceil(len(x) * spec.rate_hz / env.rate_hz - 1e-9)
        if n_model < spec.window_len:
            raise PayloadError(422, f"samples: the recording lasts {len(x) / env.rate_hz:.3f} s; at least "
                                    f"one window ({spec.window_s} s = {spec.window_len} samples at "
                                    f"{spec.rate_hz} Hz) is needed")
        n_windows = (n_model - spec.window_len) // spec.step + 1
        if n_windows > serve_.max_windows:
            raise PayloadError(422, f"samples: the recording makes {n_windows} windows; at most "
                                    f"{serve_.max_windows} per request (serve.max_windows)")
        tl = await run_in_threadpool(predict_timeline, model, x, env.rate_hz,
                                     serve_.smoothing_windows, env.start_time_s)
        if not len(tl.windows):  # resampling rounding can land one sample short
            raise PayloadError(422, "samples: the recording is shorter than one window after resampling")
        _log("/v1/predict/recording", model, tl.windows, tl.raw_pred)
        return _json({"model": {"name": model.name, "version": model.version}, "rate_hz": spec.rate_hz,
                      "n_windows": len(tl.windows), "segments": [s.as_dict() for s in tl.segments]})

    @app.post("/v1/admin/reload", response_model=schemas.ReloadResponse)
    async def admin_reload(force: bool = False) -> Response:
        """Re-resolve the model URI now and load it if it moved (``force`` reloads regardless)."""
        swapped = await run_in_threadpool(holder.refresh, force)
        model = holder.current
        return _json({"reloaded": swapped, "version": model.version if model else None,
                      "error": holder.last_error})

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _body_ref(name: str) -> dict[str, Any]:
    # The handlers read the raw body (see module docstring), so the schema is attached by reference.
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi
        from pydantic.json_schema import models_json_schema

        spec = get_openapi(title=app.title, version=app.version, description=app.description,
                           routes=app.routes)
        _, defs = models_json_schema([(m, "validation") for m in schemas.REQUEST_MODELS],
                                     ref_template="#/components/schemas/{model}")
        spec.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = spec
    return app.openapi_schema


def write_openapi(path: Path) -> Path:
    """Write the OpenAPI document (no model needed) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(create_app(inference_log=False).openapi(), indent=2) + "\n")
    return path


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker mode: the config travels in ``HAR_SERVE_CONFIG``."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    return create_app(ServeParams.model_validate(cfg["serve"]), tracking_uri=cfg["tracking_uri"],
                      intra_op_threads=cfg["threads"])


def run_server(serve: ServeParams, tracking_uri: str | None = None, intra_op_threads: int | None = None,
               workers: int = 1) -> None:
    """Serve with uvicorn until interrupted (``intra_op_threads`` defaults to ``serve.ort_threads``).
    Access log off: it costs ~15 % at 1k req/s."""
    import uvicorn

    if intra_op_threads is None:
        intra_op_threads = serve.ort_threads
    common = {"host": serve.host, "port": serve.port, "access_log": False, "log_level": "warning",
              "timeout_graceful_shutdown": 10}
    if workers <= 1:
        uvicorn.run(create_app(serve, tracking_uri=tracking_uri, intra_op_threads=intra_op_threads),
                    **common)
        return
    os.environ[CONFIG_ENV] = json.dumps({"serve": serve.model_dump(mode="json"),
                                         "tracking_uri": tracking_uri, "threads": intra_op_threads})
    uvicorn.run("har.serving.app:app_from_env", factory=True, workers=workers, **common)
