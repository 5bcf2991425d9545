"""uvicorn with the limits of ``serve.*``: read timeout, keep-alive, connection cap.

uvicorn has a keep-alive timeout but no read timeout: a client that sends half a request line, or
a Content-Length it never delivers, holds its connection (and the body received so far) forever.
``ReadTimeoutProtocol`` adds one: a whole request — headers and body — must arrive within
``serve.read_timeout_s`` of the connection opening or of the previous response. Then a request
still in its body is answered ``408`` and the connection closed; a connection still in its headers
is closed. A request whose body has arrived is never cut, however long the app works on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from har.config import ServeParams, ValidateParams
from har.serving.gate import ARRIVED

log = logging.getLogger(__name__)

CONFIG_ENV = "HAR_SERVE_CONFIG"  # JSON handed to worker processes by `run_server(workers>1)`

try:  # httptools is in the serve extra; h11 is uvicorn's pure-Python fallback
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # pragma: no cover - depends on the install
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]

_REQUEST_TIMEOUT_BODY = b'{"detail":"request not received within serve.read_timeout_s"}'
RAW_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
           b"content-length: " + str(len(_REQUEST_TIMEOUT_BODY)).encode() + b"\r\n\r\n"
           + _REQUEST_TIMEOUT_BODY)


def _serving_state(config: Any) -> Any:
    """The app's ``ServingState`` (read timeout, metrics), found through uvicorn's wrappers and
    cached on the config: protocol instances get only the config, and a class built per app could
    not be pickled into ``--workers`` processes."""
    cached = getattr(config, "_har_state", False)
    if cached is not False:
        return cached
    app, found = getattr(config, "loaded_app", None), None
    for _ in range(16):
        found = getattr(getattr(app, "state", None), "har", None)
        if found is not None or app is None:
            break
        app = getattr(app, "app", None)
    config._har_state = found
    return found


class ReadTimeoutProtocol(_BaseProtocol):  # type: ignore[misc, valid-type]
    _har_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._har_arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._har_arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # when the request's first bytes were parsed: the gate sheds requests that then waited on
        # the busy event loop for longer than serve.max_queue_wait_ms (har.serving.gate)
        self.scope[ARRIVED] = time.perf_counter()  # type: ignore[literal-required]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._har_timer is not None:
            self._har_timer.cancel()
            self._har_timer = None
        super().connection_lost(exc)

    def _har_arm(self) -> None:
        if self._har_timer is not None:
            self._har_timer.cancel()
            self._har_timer = None
        state = _serving_state(self.config)
        if state is not None and not self.transport.is_closing():
            self._har_timer = self.loop.call_later(state.serve.read_timeout_s, self._har_expired)

    def _har_expired(self) -> None:
        self._har_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        active = cycle is not None and not cycle.response_complete
        if active and not cycle.more_body:
            return  # the whole request is in; the app is working on it: not a read timeout
        phase = "body" if active else "headers"
        if active:
            cycle.scope["har.read_timeout"] = True  # the body reader words its log line with it
            if not cycle.response_started:
                self.transport.write(RAW_408)
            cycle.disconnected = True  # the app's receive() now returns http.disconnect
            cycle.message_event.set()
        state = _serving_state(self.config)
        if state is not None:
            state.metrics.read_timeouts.labels(phase).inc()
        self.transport.close()


def uvicorn_options(serve: ServeParams) -> dict[str, Any]:
    """uvicorn.Config/run keyword arguments for ``serve`` (also used by the tests' live server)."""
    return {"http": ReadTimeoutProtocol, "timeout_keep_alive": serve.keep_alive_timeout_s,
            "limit_concurrency": serve.max_connections, "access_log": False, "log_level": "warning",
            "timeout_graceful_shutdown": 10}


def app_from_env() -> Any:
    """uvicorn factory for multi-worker mode: the config travels in ``HAR_SERVE_CONFIG``."""
    from har.serving.app import create_app

    cfg = json.loads(os.environ[CONFIG_ENV])
    return create_app(ServeParams.model_validate(cfg["serve"]), tracking_uri=cfg["tracking_uri"],
                      intra_op_threads=cfg["threads"],
                      validate=ValidateParams.model_validate(cfg["validate"]))


def run_server(serve: ServeParams, tracking_uri: str | None = None, intra_op_threads: int | None = None,
               workers: int = 1, validate: ValidateParams | None = None) -> None:
    """Serve with uvicorn until interrupted (``intra_op_threads`` defaults to ``serve.ort_threads``;
    ``validate`` gives the sensor ranges, default ValidateParams()). Access log off: it costs ~15 %
    at 1k req/s."""
    import uvicorn

    from har.serving.app import create_app

    if intra_op_threads is None:
        intra_op_threads = serve.ort_threads
    validate = validate or ValidateParams()
    common = {"host": serve.host, "port": serve.port, **uvicorn_options(serve)}
    if workers <= 1:
        uvicorn.run(create_app(serve, tracking_uri=tracking_uri, intra_op_threads=intra_op_threads,
                               validate=validate), **common)
        return
    os.environ[CONFIG_ENV] = json.dumps({"serve": serve.model_dump(mode="json"),
                                         "validate": validate.model_dump(mode="json"),
                                         "tracking_uri": tracking_uri, "threads": intra_op_threads})
    uvicorn.run("har.serving.server:app_from_env", factory=True, workers=workers, **common)
