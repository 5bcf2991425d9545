"""``GET /metrics``: Prometheus text format (har.serving.metrics)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from har.serving.metrics import CONTENT_TYPE
from har.serving.state import State

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
async def metrics(state: State) -> Response:
    """Request counts and latency per route and status, load shedding, read timeouts, predicted
    activities, the served model and its reloads, inference-log writes and drops."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
