"""The inference log: rotation by size, retention by age and total size, a bounded queue whose drops
are counted (a real stuck writer: a FIFO nobody reads), and no lost records on SIGTERM of a real
`har serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from serving_support import CHANNELS, REPO, free_port

from har.serving.inference_log import InferenceLogWriter, log_files, make_record, read_inference_log

WIN = [[0.1] * 6] * 128


def _record(i: int, when: datetime | None = None) -> dict:
    x = np.full((2, 128, 6), i, np.float32)
    return make_record("/v1/predict", "3", CHANNELS, x, ["WALKING", "SITTING"], now=when)


def test_rotation_by_size_and_the_reader_reads_every_file(tmp_path: Path) -> None:
    line = len(json.dumps(_record(0))) + 1
    w = InferenceLogWriter(tmp_path, flush_interval_s=0.05, max_file_bytes=line * 10)
    for i in range(45):
        w.write(_record(i))
        if i % 5 == 4:
            time.sleep(0.1)  # several flushes, so files fill up and roll over
    w.close()
    files = log_files(tmp_path)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert [p.name for p in files][:3] == [f"{day}.jsonl", f"{day}.1.jsonl", f"{day}.2.jsonl"]
    assert len(files) >= 5 and all(p.stat().st_size <= line * 10 for p in files)
    assert w.written == 45 and not w.dropped
    df = read_inference_log(tmp_path)
    assert len(df) == 90  # 45 records × 2 windows, rotated files included
    assert sorted(set(df["acc_x_mean"].round(3))) == list(range(45))


def test_drift_monitor_reads_rotated_files(tmp_path: Path) -> None:
    from har.monitoring.recent import from_inference_log

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    for name, i in ((f"{day}.jsonl", 1), (f"{day}.1.jsonl", 2), (f"{day}.2.jsonl", 3)):
        (tmp_path / name).write_text(json.dumps(_record(i)) + "\n")
    df = from_inference_log(tmp_path)
    assert len(df) == 6 and set(df["acc_x_mean"]) == {1.0, 2.0, 3.0}


def test_retention_by_age_and_total_size(tmp_path: Path) -> None:
    today = datetime.now(UTC)
    old = [(today - timedelta(days=d)).strftime("%Y-%m-%d") for d in (40, 31, 10, 2)]
    for day in old:
        (tmp_path / f"{day}.jsonl").write_bytes(b"x" * 1000)
    (tmp_path / "notes.txt").write_text("not a log")
    w = InferenceLogWriter(tmp_path, retention_days=30, max_total_bytes=1500)
    w.write(_record(0))
    w.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    # 40 and 31 days: too old; 10 days: over the total with today's file; 2 days + today fit
    assert names == sorted([f"{old[3]}.jsonl", f"{today.strftime('%Y-%m-%d')}.jsonl", "notes.txt"])


def test_stuck_writer_drops_and_counts_instead_of_growing(live_server, random_onnx: Path,
                                                          tmp_path: Path) -> None:
    """The day's file is a FIFO with no reader: open() blocks forever, like a hung disk."""
    log_dir = tmp_path / "inference_log"
    log_dir.mkdir()
    os.mkfifo(log_dir / f"{datetime.now(UTC).strftime('%Y-%m-%d')}.jsonl")
    srv = live_server(str(random_onnx), inference_log_queue_max=5)
    body = {"channels": CHANNELS, "windows": [WIN]}
    with httpx.Client() as client:
        for _ in range(20):
            assert client.post(f"{srv.url}/v1/predict", json=body).status_code == 200
    time.sleep(0.6)  # the writer has taken its batch and is blocked on the FIFO
    for _ in range(10):
        assert httpx.post(f"{srv.url}/v1/predict", json=body).status_code == 200
    metrics = httpx.get(f"{srv.url}/metrics").text
    queued = float(next(ln.split()[-1] for ln in metrics.splitlines()
                        if ln.startswith("har_inference_log_queue_size")))
    dropped = float(next(ln.split()[-1] for ln in metrics.splitlines()
                         if ln.startswith('har_inference_log_records_dropped_total{reason="queue_full"}')))
    assert queued <= 5 and dropped >= 5
    # unblock the writer so the server can stop: read the FIFO
    fd = os.open(log_dir / f"{datetime.now(UTC).strftime('%Y-%m-%d')}.jsonl", os.O_RDONLY | os.O_NONBLOCK)
    srv.__exit__(None, None, None)
    os.close(fd)


def test_sigterm_flushes_every_record(random_onnx: Path, tmp_path: Path) -> None:
    port = free_port()
    log_dir = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_ENABLE_TELEMETRY": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "har.cli", "serve", "--params", str(REPO / "params.yaml"),
                             "--model-uri", str(random_onnx), "--port", str(port),
                             "--inference-log-dir", str(log_dir)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        with httpx.Client() as client:
            for _ in range(200):
                assert client.post(f"{url}/v1/predict", json={"channels": CHANNELS, "windows": [WIN]}
                                   ).status_code == 200
        proc.send_signal(signal.SIGTERM)  # right away: most records are still queued
        # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM, no SIGKILL
        assert proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(read_inference_log(log_dir)) == 200
