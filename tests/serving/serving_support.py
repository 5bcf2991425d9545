"""Shared constants and the live-server helper for tests/serving (imported by name: no packages)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
CLASSES = yaml.safe_load((REPO / "params.yaml").read_text())["preprocess"]["classes"]
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"  # the live_server fixture's admin token
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn.Server on 127.0.0.1:<free port> in a thread, configured like `har serve`: real
    HTTP, stopped on exit."""

    def __init__(self, app) -> None:
        import uvicorn

        from har.serving.server import uvicorn_options

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the production server's options: read timeout protocol, keep-alive, connection cap
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                **uvicorn_options(app.state.har.serve))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/readyz").status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"not ready: {httpx.get(f'{self.url}/readyz').text}")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
