"""Helpers shared by the route modules: JSON responses and the documented error responses."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from har.serving import schemas


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson (numpy arrays included): several times faster than FastAPI's encoder."""
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes, each ``{"detail": "..."}``."""
    return {code: {"model": schemas.ErrorResponse} for code in codes}


def body_ref(name: str) -> dict[str, Any]:
    # The handlers read the raw body (har.serving.payload), so the schema is attached by reference.
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}
