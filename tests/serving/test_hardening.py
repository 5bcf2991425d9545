"""Issue 14's hostile-client findings as regression tests, over real HTTP: JSON depth, values that
overflow the model, loose typing, content type, admin auth and CORS, read timeouts, load shedding,
aborted uploads, early refusal of over-cap requests, /metrics."""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_support import ADMIN, CHANNELS, LiveServer

from har.config import ServeParams, ValidateParams
from har.serving.app import create_app

WIN = [[0.1] * 6] * 128
P, R = "/v1/predict", "/v1/predict/recording"
REC = [[0.1] * 6] * 300


def _win_with(value: object, col: int = 2) -> list:
    w = [list(row) for row in WIN]
    w[5][col] = value
    return [w]


def _no_nulls(obj: object) -> bool:
    """True when no value in the decoded JSON is null or a non-finite float."""
    if obj is None:
        return False
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_no_nulls(v) for k, v in obj.items() if k not in ("name", "version"))
    if isinstance(obj, list):
        return all(_no_nulls(v) for v in obj)
    return True


@pytest.fixture(scope="module")
def server(random_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path_factory.mktemp("log"))
    with LiveServer(create_app(serve, validate=ValidateParams(), admin_token=None)) as srv:
        srv.wait_ready()
        yield srv


def _post(srv: LiveServer, path: str, body: object, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(srv.url + path, content=body,
                          headers={"content-type": "application/json", **headers})
    return httpx.post(srv.url + path, json=body, headers=headers)


# ---- 1. JSON nesting depth: a bounded 422, never a RecursionError 500 ----------------------------

@pytest.mark.parametrize("body", [
    b"[" * 1025 + b"]" * 1025,  # the reported case: orjson's limit + 1
    b'{"channels": ' + b"[" * 1025 + b"]" * 1025 + b"}",
    b"[" * 100_000,  # unterminated and far deeper
    b'{"a": NaN, "b": ' + b"[" * 1000 + b"]" * 1000 + b"}",  # NaN → Python's json, which recurses
], ids=["1025-array", "1025-in-object", "100k-open", "nan-then-1000"])
def test_deep_json_is_422(server: LiveServer, body: bytes) -> None:
    r = _post(server, P, body)
    assert r.status_code == 422, r.text
    assert "deep" in r.json()["detail"] or "not valid JSON" in r.json()["detail"]


def test_deep_arrays_inside_a_valid_document_are_422(server: LiveServer) -> None:
    deep = json.loads("[" * 200 + "1" + "]" * 200)
    r = _post(server, P, {"channels": CHANNELS, "windows": deep})
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"], r.text


# ---- 2. no null / non-finite numbers in responses: physical ranges, bounded start time -----------

@pytest.mark.parametrize(("value", "col", "channel"), [
    (3e38, 2, "acc_z"), (-3e38, 0, "acc_x"), (16.5, 1, "acc_y"), (35.5, 3, "gyro_x"), (-1e6, 5, "gyro_z"),
])
def test_values_outside_physical_range_are_422_naming_the_channel(server: LiveServer, value: float,
                                                                   col: int, channel: str) -> None:
    r = _post(server, P, {"channels": CHANNELS, "windows": _win_with(value, col), "return_probs": True})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f"windows[0][5][{col}]" in detail and repr(channel) in detail and "physical range" in detail


def test_recording_values_outside_range_are_422(server: LiveServer) -> None:
    samples = [list(row) for row in REC]
    samples[7][4] = 3e38
    r = _post(server, R, {"rate_hz": 50, "channels": CHANNELS, "samples": samples})
    assert r.status_code == 422 and "samples[7][4]" in r.json()["detail"] and "gyro_y" in r.json()["detail"]


def test_values_at_the_range_limits_give_finite_numbers(server: LiveServer) -> None:
    """±16 g and ±35 rad/s (validate params) are accepted and every number in the answer is finite."""
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(4, 128, 6)) * np.array([16, 16, 16, 35, 35, 35])
    r = _post(server, P, {"channels": CHANNELS, "windows": x.tolist(), "return_probs": True})
    assert r.status_code == 200, r.text
    assert _no_nulls(r.json()["predictions"])
    rec = _post(server, R, {"rate_hz": 50, "channels": CHANNELS, "samples": x.reshape(-1, 6).tolist(),
                            "start_time_s": 1e10})
    assert rec.status_code == 200, rec.text
    assert _no_nulls(rec.json()["segments"]) and rec.json()["segments"][0]["start_s"] == 1e10


@pytest.mark.parametrize("start", [1e308, 1e11, -1.0])
def test_start_time_out_of_bounds_is_422(server: LiveServer, start: float) -> None:
    r = _post(server, R, {"rate_hz": 50, "channels": CHANNELS, "samples": REC, "start_time_s": start})
    assert r.status_code == 422 and "start_time_s" in r.json()["detail"], r.text


def test_sensor_ranges_come_from_validate_params(random_onnx: Path, tmp_path: Path) -> None:
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path)
    validate = ValidateParams(acc_abs_max_g=2.0, gyro_abs_max_rad_s=35.0)
    with LiveServer(create_app(serve, validate=validate)) as srv:
        srv.wait_ready()
        r = _post(srv, P, {"channels": CHANNELS, "windows": _win_with(3.0, 0)})
        assert r.status_code == 422 and "≤ 2 g" in r.json()["detail"], r.text


# ---- 3. strict types, application/json only ------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "field"), [
    (P, {"channels": CHANNELS, "windows": [WIN], "return_probs": "yes"}, "return_probs"),
    (P, {"channels": CHANNELS, "windows": [WIN], "return_probs": 1}, "return_probs"),
    (R, {"rate_hz": "50", "channels": CHANNELS, "samples": REC}, "rate_hz"),
    (R, {"rate_hz": True, "channels": CHANNELS, "samples": REC}, "rate_hz"),
    (R, {"rate_hz": 50, "channels": CHANNELS, "samples": REC, "start_time_s": "0"}, "start_time_s"),
    (P, {"channels": [1, 2, 3, 4, 5, 6], "windows": [WIN]}, "channels"),
])
def test_no_type_coercion(server: LiveServer, path: str, body: dict, field: str) -> None:
    r = _post(server, path, body)
    assert r.status_code == 422 and field in r.json()["detail"], r.text


def test_integer_rate_is_still_a_number(server: LiveServer) -> None:
    assert _post(server, R, {"rate_hz": 50, "channels": CHANNELS, "samples": REC}).status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
def test_body_must_be_declared_json(server: LiveServer, ctype: str | None) -> None:
    body = json.dumps({"channels": CHANNELS, "windows": [WIN]}).encode()
    headers = {"content-type": ctype} if ctype else {}
    r = httpx.post(server.url + P, content=body, headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["detail"], r.text
    ok = httpx.post(server.url + P, content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


# ---- 4. early refusal of over-cap requests ------------------------------------------------------

def test_4097_windows_refused_by_count(server: LiveServer) -> None:
    window = b"[" + b",".join([b"[0,0,0,0,0,0]"] * 128) + b"]"
    body = b'{"channels": ' + json.dumps(CHANNELS).encode() + b', "windows": [' + \
        b",".join([window] * 4097) + b"]}"
    assert len(body) < ServeParams().max_body_bytes  # under the byte cap: only the count can stop it
    r = _post(server, P, body)
    assert r.status_code == 422 and "4097 windows; at most 4096" in r.json()["detail"], r.text


def test_samples_cap(random_onnx: Path, tmp_path: Path) -> None:
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path, max_samples=1000)
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        r = _post(srv, R, {"rate_hz": 50, "channels": CHANNELS, "samples": [[0.1] * 6] * 1001})
        assert r.status_code == 422 and "at most 1000 per request (serve.max_samples)" in r.json()["detail"]


# ---- 5. admin token and CORS --------------------------------------------------------------------

def test_admin_disabled_without_token(server: LiveServer) -> None:
    r = httpx.post(f"{server.url}/v1/admin/reload", headers=ADMIN)
    assert r.status_code == 403 and "HAR_ADMIN_TOKEN" in r.json()["detail"]
    anonymous = httpx.post(f"{server.url}/v1/admin/reload")
    assert anonymous.status_code == 401 and "disabled" in anonymous.json()["detail"]


def test_admin_token_required(random_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAR_ADMIN_TOKEN", "s3cret-token-from-the-environment")
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path)
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        url = f"{srv.url}/v1/admin/reload"
        missing = httpx.post(url)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert httpx.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert httpx.post(url, headers={"Authorization": "Basic czNjcmV0"}).status_code == 401
        ok = httpx.post(url, headers={"Authorization": "Bearer s3cret-token-from-the-environment"})
        assert ok.status_code == 200 and ok.json()["reloaded"] is False


def test_no_cors_unless_configured(server: LiveServer, random_onnx: Path, tmp_path: Path) -> None:
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization"}
    r = httpx.options(f"{server.url}/v1/admin/reload", headers=pre)
    assert "access-control-allow-origin" not in r.headers and r.status_code >= 400
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path,
                        cors_origins=["https://app.example"])
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        ok = httpx.options(f"{srv.url}{P}", headers={**pre, "Origin": "https://app.example",
                                                      "Access-Control-Request-Headers": "content-type"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        evil = httpx.options(f"{srv.url}{P}", headers=pre)
        assert "access-control-allow-origin" not in evil.headers


# ---- 4. read timeouts, load shedding, aborted uploads -------------------------------------------

@pytest.fixture
def tight(random_onnx: Path, tmp_path: Path):
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path, read_timeout_s=1.0,
                        max_concurrency=3, retry_after_s=2)
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        yield srv


def _open(srv: LiveServer, data: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(data)
    return s


def _partial_upload(srv: LiveServer, declared: int = 100_000) -> socket.socket:
    head = (f"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    return _open(srv, head + b'{"channels": ["acc_x"], "windows": [[[0.1')


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_half_sent_headers_are_closed_after_read_timeout(tight: LiveServer) -> None:
    socks = [_open(tight, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]
    idle = _open(tight, b"")
    t0 = time.monotonic()
    for s in [*socks, idle]:
        assert _read_all(s) == b""  # closed by the server, nothing sent
        s.close()
    assert time.monotonic() - t0 < 5
    metrics = httpx.get(f"{tight.url}/metrics").text
    assert 'har_http_read_timeouts_total{phase="headers"} 21.0' in metrics


def test_half_sent_body_gets_408_and_one_log_line(tight: LiveServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    s = _partial_upload(tight)
    reply = _read_all(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 408 ") and b"read_timeout_s" in reply
    time.sleep(0.2)
    lines = [r for r in caplog.records if "upload aborted" in r.getMessage()]
    assert len(lines) == 1 and "read timeout" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_aborted_upload_logs_one_line_no_traceback(tight: LiveServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    s = _partial_upload(tight, declared=7_500_000)
    s.sendall(b", 0.2" * 10_000)
    time.sleep(0.2)
    s.close()  # the client gives up mid-upload
    deadline = time.monotonic() + 5
    while not [r for r in caplog.records if "upload aborted" in r.getMessage()]:
        assert time.monotonic() < deadline, "no log line for the aborted upload"
        time.sleep(0.05)
    time.sleep(0.2)
    lines = [r for r in caplog.records if "upload aborted" in r.getMessage()]
    assert len(lines) == 1 and "client closed the connection" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert 'status="499"' in httpx.get(f"{tight.url}/metrics").text


def test_queue_wait_shedding(random_onnx: Path, tmp_path: Path) -> None:
    """A request that waited on the event loop longer than serve.max_queue_wait_ms is shed (here the
    limit is 1 µs, so every model request is); the probes are never shed."""
    serve = ServeParams(model_uri=str(random_onnx), inference_log_dir=tmp_path, max_queue_wait_ms=0.001)
    with LiveServer(create_app(serve)) as srv:
        srv.wait_ready()
        r = httpx.post(srv.url + P, json={"channels": CHANNELS, "windows": [WIN]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "serve.max_queue_wait_ms" in r.json()["detail"]
        assert httpx.get(f"{srv.url}/healthz").status_code == 200
        assert httpx.get(f"{srv.url}/readyz").status_code == 200


def test_load_shedding_503_with_retry_after_and_probes_still_answer(tight: LiveServer) -> None:
    held = [_partial_upload(tight) for _ in range(3)]  # serve.max_concurrency requests in progress
    time.sleep(0.2)
    body = {"channels": CHANNELS, "windows": [WIN]}
    busy = httpx.post(tight.url + P, json=body)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert "serve.max_concurrency" in busy.json()["detail"]
    assert httpx.get(f"{tight.url}/healthz").status_code == 200
    assert httpx.get(f"{tight.url}/readyz").status_code == 200
    metrics = httpx.get(f"{tight.url}/metrics").text
    assert 'har_http_requests_shed_total{route="/v1/predict"} 1.0' in metrics
    assert "har_http_requests_in_flight 3.0" in metrics
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while (r := httpx.post(tight.url + P, json=body)).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)


# ---- 7. /metrics ---------------------------------------------------------------------------------

def test_metrics_in_prometheus_format(live_server, random_onnx: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    srv = live_server(str(random_onnx))
    for _ in range(3):
        assert httpx.post(srv.url + P, json={"channels": CHANNELS, "windows": [WIN, WIN]}).status_code == 200
    assert httpx.post(srv.url + P, json={"channels": CHANNELS}).status_code == 422
    reload = httpx.post(f"{srv.url}/v1/admin/reload", params={"force": "true"}, headers=ADMIN)
    assert reload.status_code == 200
    r = httpx.get(f"{srv.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(r.text) for s in fam.samples}

    def value(metric: str, **labels: str) -> float:
        return samples[(metric, tuple(sorted(labels.items())))]

    ok = {"route": P, "method": "POST", "status": "200"}
    assert value("har_http_requests_total", **ok) == 3
    assert value("har_http_requests_total", route=P, method="POST", status="422") == 1
    assert value("har_http_request_duration_seconds_count", **ok) == 3
    assert value("har_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    predicted = sum(v for (n, _), v in samples.items() if n == "har_predictions_total")
    assert predicted == 6
    assert value("har_model_info", name="", version="unversioned", model_type="cnn1d") == 1
    assert value("har_model_reloads_total", result="swapped") == 2  # the first load and the forced one
    assert value("har_inference_log_records_dropped_total", reason="queue_full") == 0
    # an unknown path is one label value, whatever the URL
    httpx.get(f"{srv.url}/nope/{'x' * 50}")
    assert 'route="other"' in httpx.get(f"{srv.url}/metrics").text


def test_big_bodies_run_off_the_loop_and_leave_the_gc_on(server: LiveServer) -> None:
    """A body over 64 KiB is parsed in the worker thread with the cyclic GC paused; afterwards
    (this test shares the server's process) collection is on again."""
    import gc

    x = np.random.default_rng(3).normal(size=(40, 128, 6)).round(4)
    body = json.dumps({"channels": CHANNELS, "windows": x.tolist()}).encode()
    assert len(body) > 64 * 1024
    r = _post(server, P, body)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 40
    assert gc.isenabled()
