"""The outermost ASGI middleware: load shedding and the per-request metrics.

Load shedding: at most ``serve.max_concurrency`` requests are in progress on the gated routes;
one more is answered ``503`` with ``Retry-After`` at once, before its body is read, instead of
queueing behind the others for seconds. The probes (``/healthz``, ``/readyz``) and ``/metrics``
are never gated, so a saturated server still says it is alive.

A plain ASGI class rather than Starlette's ``BaseHTTPMiddleware``: that one runs the app in an
extra task and buffers responses, which costs more than a whole single-window prediction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from har.serving.metrics import Metrics

UNGATED = frozenset({"/healthz", "/readyz", "/metrics"})


class Gate:
    def __init__(self, app: Any, metrics: Metrics, max_concurrency: int, retry_after_s: int,
                 routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = max_concurrency
        self.in_flight = 0
        self.routes = routes  # label values: known paths only, so random URLs cannot explode them
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        body = orjson.dumps({"detail": f"server busy: {max_concurrency} requests in progress "
                                       f"(serve.max_concurrency); retry after {retry_after_s} s"})
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
        if gated and self.in_flight >= self.limit:
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
