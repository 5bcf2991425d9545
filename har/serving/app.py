"""The HTTP API: ``create_app(serve_params)`` → FastAPI app serving the ONNX model.

``create_app`` only assembles: the shared ``ServingState`` (``app.state.har``), the routers of
``har.serving.routes`` (one module per concern; handlers get what they need through the
dependencies of ``har.serving.state``), the error handlers, CORS when configured, and the
load-shedding/metrics gate outermost. Hot-path choices (docs/serving.md#performance): the body
is read once with a size cap, parsed by orjson and turned into numpy with ``np.asarray``; pydantic
validates only the small envelope fields; responses are serialised by orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from har.config import ServeParams, ValidateParams
from har.serving import schemas
from har.serving.gate import Gate
from har.serving.inference_log import InferenceLogWriter
from har.serving.model import ModelHolder

# Re-exported: these names lived here before the split into payload/routes/server modules.
from har.serving.payload import (  # noqa: F401
    PayloadError,
    SensorLimits,
    channel_order,
    format_validation_errors,
    numeric_array,
    read_json_body,
)
from har.serving.routes import ROUTERS
from har.serving.routes.common import json_response
from har.serving.routes.predict import INLINE_MAX_WINDOWS  # noqa: F401
from har.serving.server import CONFIG_ENV, app_from_env, run_server  # noqa: F401
from har.serving.state import HEAVY_THREADS, ServingState, freeze_heap

log = logging.getLogger(__name__)


def create_app(serve: ServeParams | None = None, *, tracking_uri: str | None = None,
               intra_op_threads: int | None = None, holder: ModelHolder | None = None,
               inference_log: bool = True, validate: ValidateParams | None = None,
               admin_token: str | None = None) -> FastAPI:
    """The API for ``serve`` (params.yaml ``serve``). The model loads in the background at
    startup, then every ``serve.reload_interval_s`` the URI is re-resolved and reloaded if moved.
    ``intra_op_threads`` defaults to ``serve.ort_threads``; ``validate`` (params ``validate``)
    gives the sensor ranges; ``admin_token`` defaults to ``$HAR_ADMIN_TOKEN``."""
    serve = serve or ServeParams()
    threads = serve.ort_threads if intra_op_threads is None else intra_op_threads
    state = ServingState(serve=serve, holder=holder or ModelHolder(serve.model_uri, tracking_uri, threads),
                         limits=SensorLimits.from_params(validate),
                         admin_token=admin_token or ServingState.admin_token_from_env())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.heavy = anyio.CapacityLimiter(HEAVY_THREADS)
        if inference_log:
            state.writer = InferenceLogWriter(
                serve.inference_log_dir, queue_max=serve.inference_log_queue_max,
                max_file_bytes=serve.inference_log_max_file_bytes,
                max_total_bytes=serve.inference_log_max_total_bytes,
                retention_days=serve.inference_log_retention_days)
            state.metrics.watch_inference_log(lambda: state.writer)
        freeze_heap()  # everything imported so far is long-lived

        async def poll() -> None:
            while True:
                try:
                    await run_in_threadpool(state.refresh)
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
            if state.writer is not None:
                state.writer.close()

    app = FastAPI(title="har serving", version="1", lifespan=lifespan,
                  description="Human activity recognition from raw IMU windows (docs/serving.md).")
    app.state.har = state
    for router in ROUTERS:
        # The routers' own APIRoute objects (no prefix, no router-level dependencies), not
        # include_router: FastAPI ≥ 0.150 wraps included routers in lazy matchers that cost
        # ~10 µs per request; the routes are stateless and serve any app.
        app.router.routes.extend(router.routes)

    @app.exception_handler(PayloadError)
    async def _payload_error(request: Request, exc: PayloadError) -> Response:
        return json_response({"detail": exc.message}, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return json_response({"detail": format_validation_errors(exc.errors())}, 422)

    if serve.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=serve.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization"], max_age=600)
    # added last = outermost: a shed request costs no routing, no body read
    app.add_middleware(Gate, metrics=state.metrics, max_concurrency=serve.max_concurrency,
                       retry_after_s=serve.retry_after_s, max_queue_wait_ms=serve.max_queue_wait_ms,
                       routes=frozenset(_paths(app)))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _paths(app: FastAPI) -> set[str]:
    return {getattr(r, "path", "") for r in app.routes} - {""}


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


def openapi_document() -> str:
    """The OpenAPI document as written to docs/openapi.json (no model needed)."""
    return json.dumps(create_app(inference_log=False).openapi(), indent=2) + "\n"


def write_openapi(path: Path) -> Path:
    """Write the OpenAPI document (no model needed) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(openapi_document())
    return path
