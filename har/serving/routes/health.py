"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (a model is loaded). Never load-shed
(har.serving.gate), so they answer while the model routes are saturated."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from har.serving import schemas
from har.serving.routes.common import errors, json_response
from har.serving.state import State

router = APIRouter(tags=["probes"])


@router.get("/healthz", response_model=schemas.HealthResponse)
async def healthz() -> Response:
    """The process is alive (says nothing about the model)."""
    return json_response({"status": "ok"})


@router.get("/readyz", response_model=schemas.ReadyResponse, responses=errors(503))
async def readyz(state: State) -> Response:
    """200 once a model is loaded, 503 (with the load error) before that. While the model source
    (the MLflow server, or the file) cannot be reached, the loaded model keeps serving: still
    200, with ``source`` saying why it is not being refreshed."""
    holder = state.holder
    model = holder.current
    if model is None:
        return json_response({"detail": f"no model loaded: {holder.last_error or 'loading'}"}, 503)
    source = "ok" if holder.last_error is None else f"unreachable, serving the loaded model: " \
                                                       f"{holder.last_error}"
    return json_response({"status": "ready", "version": model.version, "source": source})
