"""Admin routes: ``Authorization: Bearer $HAR_ADMIN_TOKEN`` required; while the server has no token
(the default) the routes are off: 403 for every call with credentials, 401 without. No cookie or
query-string credentials, so a web page cannot drive them cross-origin: a custom Authorization
header needs a CORS preflight, which this API refuses unless ``serve.cors_origins`` allows the
page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from har.serving import schemas
from har.serving.payload import PayloadError
from har.serving.routes.common import errors, json_response
from har.serving.state import ADMIN_TOKEN_ENV, State

router = APIRouter(tags=["admin"])
_bearer = HTTPBearer(auto_error=False, description=f"the server's {ADMIN_TOKEN_ENV}")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_admin(state: State, creds: Bearer) -> None:
    if creds is None:  # no credentials: 401 whether or not the routes are enabled (RFC 9110)
        off = "" if state.admin_token else f" (disabled on this server: no {ADMIN_TOKEN_ENV})"
        raise PayloadError(401, f"admin API: send Authorization: Bearer <token>{off}",
                           headers={"WWW-Authenticate": "Bearer"})
    if not state.admin_token:
        raise PayloadError(403, f"admin API disabled: the server has no {ADMIN_TOKEN_ENV}")
    # constant time: the comparison must not leak how much of a guess was right
    if not hmac.compare_digest(creds.credentials.encode(), state.admin_token.encode()):
        raise PayloadError(403, "admin API: invalid token")


@router.post("/v1/admin/reload", response_model=schemas.ReloadResponse, responses=errors(401, 403, 422),
             dependencies=[Depends(require_admin)])
async def admin_reload(state: State, force: bool = False) -> Response:
    """Re-resolve the model URI now and load it if it moved (``force`` reloads regardless)."""
    swapped = await run_in_threadpool(state.refresh, force)
    model = state.holder.current
    return json_response({"reloaded": swapped, "version": model.version if model else None,
                          "error": state.holder.last_error})
