"""The API's endpoints, one module per concern. A new endpoint is a function in one of these
modules (or a new module added to ``ROUTERS``) that takes what it needs through the dependencies
in ``har.serving.state``; ``create_app`` only assembles them."""

from __future__ import annotations

from fastapi import APIRouter

from har.serving.routes import admin, health, metrics, model_info, predict

ROUTERS: list[APIRouter] = [health.router, model_info.router, predict.router, admin.router, metrics.router]
