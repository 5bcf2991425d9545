"""What the route modules share: one ``ServingState`` per app (``app.state.har``), reached through
FastAPI dependencies instead of closures inside ``create_app``."""

from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request

from har.config import ServeParams
from har.serving.inference_log import InferenceLogWriter
from har.serving.metrics import Metrics
from har.serving.model import LoadedModel, ModelHolder
from har.serving.payload import PayloadError, SensorLimits

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "HAR_ADMIN_TOKEN"  # admin routes answer 403 while it is unset or empty
# Threads for requests too big to parse and run on the event loop. Parsing holds the GIL (orjson
# takes ~120 ms for 7.5 MB in one C call), so a second thread parses no faster, doubles the bodies
# held as Python objects and lets two parses stall the event loop back to back: with 8 clients
# sending 7.5 MB bodies, /healthz p99 was 205 ms with two threads, 115 ms with one, at the same
# throughput (docs/serving.md#limits).
HEAVY_THREADS = 1


_gc_lock = threading.Lock()
_gc_pauses = 0  # heavy calls running with the cyclic GC paused
_gc_was_enabled = True


def without_gc(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with automatic cyclic garbage collection paused (process-wide; nested and
    concurrent calls are counted). Parsing a megabyte body makes ~170k lists that stay alive until
    the conversion ends; with the heap frozen, each of them counted towards the next full
    collection, and a run of 8 concurrent 7.5 MB requests spent 7 of 22 s in collections of up to
    120 ms, holding the GIL the event loop needs. Those lists hold no cycles: reference counting
    frees them when the call returns."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        return fn(*args)
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def freeze_heap() -> None:
    """Move every object alive now into the permanent generation (``gc.freeze``): full collections
    then skip the libraries' millions of long-lived objects, which made a gen-2 collection take
    ~90 ms on the request path (docs/serving.md#tail-latency). Called after startup and after
    each model load; O(1)."""
    gc.freeze()


@dataclass
class ServingState:
    serve: ServeParams
    holder: ModelHolder
    limits: SensorLimits
    metrics: Metrics = field(default_factory=Metrics)
    admin_token: str | None = None
    writer: InferenceLogWriter | None = None
    heavy: Any = None  # anyio.CapacityLimiter, made in the lifespan (it needs the event loop)

    @staticmethod
    def admin_token_from_env() -> str | None:
        return os.environ.get(ADMIN_TOKEN_ENV) or None

    def refresh(self, force: bool = False) -> bool:
        """``holder.refresh`` plus the metrics and a heap freeze after a swap (runs in a thread)."""
        swapped = self.holder.refresh(force)
        model = self.holder.current
        if swapped and model is not None:
            self.metrics.reloads.labels("swapped").inc()
            self.metrics.set_model(model.name, model.version, model.spec.model_type)
            freeze_heap()
        elif self.holder.last_error is not None:
            self.metrics.reloads.labels("failed").inc()
        return swapped

    async def run_heavy(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in one of HEAVY_THREADS threads with the cyclic GC paused
        (``without_gc``), so the event loop keeps answering."""
        return await anyio.to_thread.run_sync(without_gc, fn, *args, limiter=self.heavy)


def state_of(request: Request) -> ServingState:
    return request.app.state.har


async def get_state(request: Request) -> ServingState:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request
    return request.app.state.har


State = Annotated[ServingState, Depends(get_state)]  # a handler parameter `state: State` gets it


def model_of(state: ServingState) -> LoadedModel:
    """The model this request uses: read once, so a reload swapping it mid-request is harmless."""
    model = state.holder.current
    if model is None:
        raise PayloadError(503, f"no model loaded: {state.holder.last_error or 'model is still loading'}")
    return model


async def current_model(state: State) -> LoadedModel:
    return model_of(state)


CurrentModel = Annotated[LoadedModel, Depends(current_model)]
