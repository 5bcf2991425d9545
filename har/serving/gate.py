"""The outermost ASGI middleware: load shedding and the per-request metrics.

Load shedding answers ``503`` with ``Retry-After`` at once, before the body is read, instead of
letting requests queue for seconds:

* when ``serve.max_concurrency`` requests are already in progress on the gated routes (slow
  uploads, big recordings in worker threads);
* when the request waited longer than ``serve.max_queue_wait_ms`` between its first bytes being
  parsed and reaching the app. Single-window requests run to completion on the event loop one
  after the other, so under overload they never pile up *inside* the app: they wait in the loop's
  queue, where the in-progress count cannot see them. The wait can: a loop round that has already
  spent that long on accepted requests answers the rest of its queue cheaply, which bounds how
  long a round, and so a probe, waits.

The probes (``/healthz``, ``/readyz``) and ``/metrics`` are never gated, so a saturated server still
says it is alive.

A plain ASGI class rather than Starlette's ``BaseHTTPMiddleware``: that one runs the app in an
extra task and buffers responses, which costs more than a whole single-window prediction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from har.serving.metrics import Metrics

UNGATED = frozenset({"/healthz", "/readyz", "/metrics"})
ARRIVED = "har.arrived"  # scope key: perf_counter() when the request's first bytes were parsed


class Gate:
    def __init__(self, app: Any, metrics: Metrics, max_concurrency: int, retry_after_s: int,
                 routes: frozenset[str], max_queue_wait_ms: float = 25.0) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = max_concurrency
        self.max_wait = max_queue_wait_ms / 1000
        self.in_flight = 0
        self.routes = routes  # label values: known paths only, so random URLs cannot explode them
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        body = orjson.dumps({"detail": f"server busy (serve.max_concurrency, serve.max_queue_wait_ms); "
                                       f"retry after {retry_after_s} s"})
        self._busy_start = {"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", str(retry_after_s).encode()),
            (b"content-length", str(len(body)).encode())]}
        self._busy_body = {"type": "http.response.body", "body": body}

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:  # labels() takes a lock and builds tuples: resolve each child once
            s = str(status)
            pair = (self.metrics.requests.labels(route, method, s),
                    self.metrics.latency.labels(route, method, s))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        route = path if path in self.routes else "other"
        method = scope["method"]
        gated = path not in UNGATED
        if gated and (self.in_flight >= self.limit or t0 - scope.get(ARRIVED, t0) > self.max_wait):
            self.metrics.shed.labels(route).inc()
            await send(self._busy_start)
            await send(self._busy_body)
            self._observe(route, method, 503, time.perf_counter() - t0)
            return
        status = 500  # if the app dies before answering, ServerErrorMiddleware sends a 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if gated:
            self.in_flight += 1
            self.metrics.in_flight.set(self.in_flight)
        try:
            await self.app(scope, receive, send_status)
        finally:
            if gated:
                self.in_flight -= 1
                self.metrics.in_flight.set(self.in_flight)
            self._observe(route, method, status, time.perf_counter() - t0)
