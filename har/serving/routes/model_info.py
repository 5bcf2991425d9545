"""``GET /v1/model``: what is being served."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from har.serving import schemas
from har.serving.routes.common import errors, json_response
from har.serving.state import CurrentModel

router = APIRouter(tags=["model"])


@router.get("/v1/model", response_model=schemas.ModelInfo, responses=errors(503))
async def model_info(model: CurrentModel) -> Response:
    """The served model: registry name/version, classes, channels, window spec, test metrics."""
    return json_response(model.info())
