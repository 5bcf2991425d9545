"""The HTTP API over real HTTP (uvicorn on 127.0.0.1): predictions, model info, probes, the log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from serving_support import ADMIN, CHANNELS, CLASSES


def _offline(onnx: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(onnx)).run(["probs"], {"window": x.astype(np.float32)})[0]


def test_predictions_equal_offline_onnxruntime(live_server, random_onnx: Path) -> None:
    srv = live_server(str(random_onnx))
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 128, 6)) * [0.3, 0.3, 0.3, 0.5, 0.5, 0.5] + [1, 0, 0, 0, 0, 0]
         ).astype(np.float32)
    expected = _offline(random_onnx, x)
    # Channels sent in another order: the server must put them back by name.
    perm = [3, 0, 5, 1, 4, 2]
    body = {"channels": [CHANNELS[i] for i in perm], "windows": x[:, :, perm].tolist(),
            "return_probs": True}
    r = httpx.post(f"{srv.url}/v1/predict", json=body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    got = np.array([p["probs"] for p in preds])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p["activity"] for p in preds] == [CLASSES[i] for i in expected.argmax(1)]
    assert r.json()["classes"] == CLASSES
    # One window, no probs by default.
    r1 = httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": x[:1].tolist()})
    assert r1.status_code == 200 and "probs" not in r1.json()["predictions"][0]
    assert r1.json()["predictions"][0]["class_id"] == int(expected[0].argmax())


def test_real_windows_match_offline(live_server, trained_onnx: Path, hapt: dict[str, Path]) -> None:
    from har.preprocess.windows import load_windows

    w = load_windows(hapt["windows"])
    test = np.isin(w.subject, json.loads(hapt["splits"].read_text())["test"])
    x = w.X[test][:500, :, :6]
    srv = live_server(str(trained_onnx))
    r = httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": x.tolist()})
    assert r.status_code == 200, r.text
    got = np.array([p["class_id"] for p in r.json()["predictions"]])
    np.testing.assert_array_equal(got, _offline(trained_onnx, x).argmax(1))
    # The fixture has learned something: well above the 1/12 chance level on held-out subjects.
    assert (got == w.y[test][:500]).mean() > 0.5


def test_model_info_and_probes(live_server, random_onnx: Path) -> None:
    srv = live_server(str(random_onnx))
    assert httpx.get(f"{srv.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{srv.url}/readyz").status_code == 200
    info = httpx.get(f"{srv.url}/v1/model").json()
    assert info["classes"] == CLASSES and info["channels"] == CHANNELS
    assert info["window"] == {"rate_hz": 50.0, "window_len": 128, "window_s": 2.56, "overlap": 0.5,
                              "step": 64}
    assert info["source_uri"] == str(random_onnx) and info["version"] is None
    spec = httpx.get(f"{srv.url}/openapi.json").json()
    assert {"PredictRequest", "RecordingRequest", "PredictResponse"} <= set(spec["components"]["schemas"])


def test_readyz_503_when_model_cannot_load(live_server, tmp_path: Path) -> None:
    srv = live_server(str(tmp_path / "missing.onnx"), ready=False)
    deadline = time.monotonic() + 10
    while True:  # the first load attempt runs in the background right after startup
        r = httpx.get(f"{srv.url}/readyz")
        if "not found" in r.text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 503 and "missing.onnx" in r.json()["detail"]
    assert httpx.get(f"{srv.url}/healthz").status_code == 200
    r = httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": [[[0.0] * 6] * 128]})
    assert r.status_code == 503 and "no model loaded" in r.json()["detail"]
    assert httpx.get(f"{srv.url}/v1/model").status_code == 503


def test_inference_log_lines_and_reader(live_server, random_onnx: Path, tmp_path: Path) -> None:
    from har.serving.inference_log import KEYS, read_inference_log

    srv = live_server(str(random_onnx))
    x = np.random.default_rng(1).normal(size=(3, 128, 6)).astype(np.float32)
    assert httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": x.tolist()}
                      ).status_code == 200
    samples = np.random.default_rng(2).normal(size=(1000, 6)).tolist()
    assert httpx.post(f"{srv.url}/v1/predict/recording",
                      json={"rate_hz": 50, "channels": CHANNELS, "samples": samples}).status_code == 200
    srv.__exit__(None, None, None)  # shutdown flushes the writer
    log_dir = tmp_path / "inference_log"
    files = list(log_dir.glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].stem) == 10  # YYYY-MM-DD
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert set(first) == set(KEYS)
    assert first["endpoint"] == "/v1/predict" and first["n_windows"] == 3
    assert first["channels"] == CHANNELS and first["model_version"] == "unversioned"
    np.testing.assert_allclose(first["window_mean"]["acc_x"], x[:, :, 0].mean(1), atol=1e-5)
    np.testing.assert_allclose(first["window_std"]["gyro_z"], x[:, :, 5].std(1), atol=1e-5)
    assert sum(first["predicted"].values()) == 3
    assert lines[1]["endpoint"] == "/v1/predict/recording" and lines[1]["n_windows"] == 14
    df = read_inference_log(log_dir)
    assert len(df) == 3 + 14
    assert {f"{c}_{s}" for c in CHANNELS for s in ("mean", "std")} <= set(df.columns)
    assert str(df["time"].dt.tz) == "UTC"
    np.testing.assert_allclose(df["acc_y_mean"].to_numpy()[:3], x[:, :, 1].mean(1), atol=1e-5)


@pytest.mark.parametrize("n", [1, 4])
def test_concurrent_requests_during_reload_all_succeed(live_server, random_onnx: Path, n: int) -> None:
    """Forced reloads while requests run: every request completes with a valid answer."""
    import concurrent.futures as cf

    # load shedding (serve.max_queue_wait_ms) is tested on its own; on a busy test machine it would
    # turn a reload-safety check into a timing check
    srv = live_server(str(random_onnx), max_queue_wait_ms=60_000)
    body = {"channels": CHANNELS, "windows": [[[0.1] * 6] * 128] * n}

    def call(_: int) -> int:
        return httpx.post(f"{srv.url}/v1/predict", json=body).status_code

    with cf.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(call, i) for i in range(40)]
        for _ in range(3):
            r = httpx.post(f"{srv.url}/v1/admin/reload", params={"force": "true"}, headers=ADMIN)
            assert r.json()["reloaded"]
        assert {f.result() for f in futs} == {200}


def test_a_file_model_has_no_card(live_server, random_onnx: Path) -> None:
    srv = live_server(str(random_onnx))
    r = httpx.get(f"{srv.url}/v1/model/card")
    assert r.status_code == 404 and "cards are written when a version is registered" in r.json()["detail"]


def test_an_int8_model_is_served_like_its_fp32_parent(live_server, trained_onnx: Path, hapt: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """`har export --quantize int8` output through the API: its own predictions, nearly the fp32 ones."""
    from har.export.quantize import quantize_int8
    from har.preprocess.windows import load_windows

    w = load_windows(hapt["windows"])
    splits = json.loads(hapt["splits"].read_text())
    calibration = w.X[np.isin(w.subject, splits["train"])][:256, :, :6]
    int8 = quantize_int8(trained_onnx, tmp_path / "int8.onnx", calibration)
    test = np.isin(w.subject, splits["test"])
    x = w.X[test][:500, :, :6]
    srv = live_server(str(int8))
    info = httpx.get(f"{srv.url}/v1/model").json()
    assert info["quantization"] == "int8-static-qdq" and info["channels"] == CHANNELS
    r = httpx.post(f"{srv.url}/v1/predict", json={"channels": CHANNELS, "windows": x.tolist()})
    assert r.status_code == 200, r.text
    got = np.array([p["class_id"] for p in r.json()["predictions"]])
    np.testing.assert_array_equal(got, _offline(int8, x).argmax(1))  # the int8 graph, not the fp32 one
    fp32 = _offline(trained_onnx, x).argmax(1)
    assert (got == fp32).mean() > 0.9  # quantisation moves few decisions
    fp32_srv = live_server(str(trained_onnx))
    assert httpx.get(f"{fp32_srv.url}/v1/model").json()["quantization"] == "none"
