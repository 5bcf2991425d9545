"""Malformed payloads: always a 4xx with a readable message, never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from serving_support import CHANNELS

WIN = [[0.1] * 6] * 128
MAX_BODY = 200_000  # small limits so the over-limit cases stay cheap
MAX_WINDOWS = 8


def _win_with(value: object) -> list:
    w = [list(row) for row in WIN]
    w[5][2] = value
    return [w]


P, R = "/v1/predict", "/v1/predict/recording"
REC = [[0.1] * 6] * 300
CASES: list[tuple[str, str, object, int, str]] = [
    # (id, endpoint, body (bytes = raw), expected status, substring of detail)
    ("bad-json", P, b'{"channels": [', 422, "not valid JSON"),
    ("empty-body", P, b"", 422, "empty request body"),
    ("not-object", P, b"[1, 2]", 422, "expected a JSON object"),
    ("missing-windows", P, {"channels": CHANNELS}, 422, "windows"),
    ("missing-channels", P, {"windows": [WIN]}, 422, "channels"),
    ("extra-field", P, {"channels": CHANNELS, "windows": [WIN], "foo": 1}, 422, "foo"),
    ("channels-not-list", P, {"channels": "acc_x", "windows": [WIN]}, 422, "channels"),
    ("windows-not-list", P, {"channels": CHANNELS, "windows": "abc"}, 422, "windows"),
    ("string-values", P, {"channels": CHANNELS, "windows": _win_with("1.5")}, 422, "non-numeric"),
    ("null-value", P, {"channels": CHANNELS, "windows": _win_with(None)}, 422, "null"),
    ("nan-literal", P, json.dumps({"channels": CHANNELS, "windows": _win_with(float("nan"))}).encode(),
     422, "windows[0][5][2]: NaN"),
    ("inf-literal", P, json.dumps({"channels": CHANNELS, "windows": _win_with(float("inf"))}).encode(),
     422, "infinite"),
    ("huge-number", P, {"channels": CHANNELS, "windows": _win_with(1e300)}, 422, "float32"),
    ("ragged", P, {"channels": CHANNELS, "windows": [WIN[:-1] + [[0.1] * 5]]}, 422, "ragged"),
    ("wrong-depth", P, {"channels": CHANNELS, "windows": WIN}, 422, "nesting levels"),
    ("empty-windows", P, {"channels": CHANNELS, "windows": []}, 422, "empty"),
    ("empty-channels", P, {"channels": [], "windows": [WIN]}, 422, "channels"),
    ("too-short", P, {"channels": CHANNELS, "windows": [WIN[:100]]}, 422, "exactly 128 samples"),
    ("too-long", P, {"channels": CHANNELS, "windows": [WIN + WIN[:10]]}, 422, "exactly 128 samples"),
    ("wrong-channel-count", P, {"channels": CHANNELS, "windows": [[[0.1] * 5] * 128]}, 422,
     "5 values but 6 channels"),
    ("unknown-channel", P, {"channels": [*CHANNELS[:5], "mag_x"], "windows": [WIN]}, 422,
     "unknown ['mag_x']"),
    ("missing-channel", P, {"channels": CHANNELS[:5], "windows": [[[0.1] * 5] * 128]}, 422,
     "missing required ['gyro_z']"),
    ("duplicate-channel", P, {"channels": [*CHANNELS[:5], "acc_x"], "windows": [WIN]}, 422, "duplicate"),
    ("too-many-windows", P, {"channels": CHANNELS, "windows": [WIN] * (MAX_WINDOWS + 1)}, 422,
     "at most 8"),
    ("return-probs-type", P, {"channels": CHANNELS, "windows": [WIN], "return_probs": "maybe"}, 422,
     "return_probs"),
    ("rate-zero", R, {"rate_hz": 0, "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-negative", R, {"rate_hz": -50, "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-absurd", R, {"rate_hz": 5000, "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-string", R, {"rate_hz": "fast", "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-missing", R, {"channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-nan", R, json.dumps({"rate_hz": float("nan"), "channels": CHANNELS, "samples": REC}).encode(),
     422, "rate_hz"),
    # Regression (resampling bombs): a few samples at a tiny rate must be refused before any work.
    # 113 bytes once asked resample_poly for a ~19 GiB filter and the kernel killed the server.
    ("rate-bomb-19gib", R, {"rate_hz": 0.0001907, "channels": CHANNELS, "samples": [[0, 0, 0, 0, 0, 0]]},
     422, "rate_hz"),
    ("rate-bomb-4096-windows", R, {"rate_hz": 50 / 262208, "channels": CHANNELS,
                                   "samples": [[0, 0, 0, 0, 0, 0]]}, 422, "rate_hz"),
    ("rate-bomb-2e9-taps", R, {"rate_hz": 0.000389184, "channels": CHANNELS,
                               "samples": [[0, 0, 0, 0, 0, 0]] * 2}, 422, "rate_hz"),
    ("rate-subnormal", R, {"rate_hz": 5e-324, "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("rate-below-1hz", R, {"rate_hz": 0.5, "channels": CHANNELS, "samples": REC}, 422, "rate_hz"),
    ("recording-too-short", R, {"rate_hz": 50, "channels": CHANNELS, "samples": REC[:100]}, 422,
     "at least one window"),
    ("recording-empty", R, {"rate_hz": 50, "channels": CHANNELS, "samples": []}, 422, "empty"),
    ("recording-3d", R, {"rate_hz": 50, "channels": CHANNELS, "samples": [REC]}, 422, "nesting levels"),
    ("recording-null", R, {"rate_hz": 50, "channels": CHANNELS, "samples": [*REC[:-1], [None] * 6]},
     422, "null"),
    ("recording-too-many-windows", R, {"rate_hz": 1, "channels": CHANNELS, "samples": REC}, 422,
     "at most 8"),
    ("recording-wrong-count", R, {"rate_hz": 50, "channels": CHANNELS, "samples": [[0.1] * 7] * 300},
     422, "7 values but 6 channels"),
    ("start-time-string", R, {"rate_hz": 50, "channels": CHANNELS, "samples": REC, "start_time_s": "x"},
     422, "start_time_s"),
    ("over-limit", R, {"rate_hz": 50, "channels": CHANNELS, "samples": [[0.123456789] * 6] * 5000}, 413,
     "limit"),
]


@pytest.fixture(scope="module")
def server(random_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    from serving_support import LiveServer

    from har.config import ServeParams
    from har.serving.app import create_app

    serve = ServeParams(model_uri=str(random_onnx), max_body_bytes=MAX_BODY, max_windows=MAX_WINDOWS,
                        inference_log_dir=tmp_path_factory.mktemp("log"))
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        yield srv


@pytest.mark.parametrize(("endpoint", "body", "status", "needle"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_payload_gets_4xx_with_message(server, endpoint: str, body: object, status: int,
                                                 needle: str) -> None:
    if isinstance(body, bytes):
        r = httpx.post(server.url + endpoint, content=body, headers={"content-type": "application/json"})
    else:
        r = httpx.post(server.url + endpoint, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and needle in detail, detail


def test_streamed_body_over_limit_without_content_length(server) -> None:
    """Chunked upload with no Content-Length: the cap applies while streaming."""
    def chunks():
        yield b'{"channels": ["acc_x"], "windows": ['
        for _ in range(50):
            yield b"[" + b"0.1," * 2000 + b"0.1],"
        yield b"[]]}"

    r = httpx.post(server.url + P, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_valid_request_still_fine_after_errors(server) -> None:
    r = httpx.post(server.url + P, json={"channels": CHANNELS, "windows": [WIN]})
    assert r.status_code == 200
