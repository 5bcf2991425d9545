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


@router.get("/v1/model/card", responses={200: {"content": {"text/markdown": {}}}, **errors(404, 503)})
async def model_card(model: CurrentModel) -> Response:
    """The served version's model card (markdown): data and subjects, evaluation protocol,
    per-class F1, intended use and limits, the promotion gate's decision, the dataset licence.
    Written at registration; a model served from a file has none (404)."""
    if model.card is None:
        return json_response({"detail": f"{model.source_uri} has no model card: cards are written when a "
                                        "version is registered (`har register`); serve a registry URI "
                                        "(models:/<name>@<alias>) to get one"}, 404)
    return Response(model.card, media_type="text/markdown; charset=utf-8")
