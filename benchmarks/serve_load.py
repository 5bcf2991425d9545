"""HTTP load test of `har serve`: req/s and latency percentiles for single-window requests.

Usage: python benchmarks/serve_load.py [--onnx PATH] [--concurrency 16] [--requests 20000]
       [--duration 20] [--client-processes 2] [--workers 1] [--threads 1]

Starts `har serve` (uvicorn) in a subprocess on 127.0.0.1 at a free port, waits for /readyz, then
runs ``--client-processes`` processes of httpx.AsyncClient coroutines (``--concurrency`` in all),
each sending one 128×6 window per request until ``--requests`` are done or ``--duration`` s
passed. The server is stopped by PID. The client runs on the same machine: its CPU competes with
the server's, which the output reports (client CPU seconds). The model served is the champion
(``serve.model_uri`` of ``--params``, e.g. ``models:/har-activity@champion``) or ``--onnx PATH``
(e.g. models/model.onnx, or a file written by ``benchmarks/latency.py``'s exporter); without either
the benchmark stops and says so. Results: benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_uri(onnx: Path | None, params: Path) -> str:
    if onnx is not None:
        if not onnx.is_file():
            raise SystemExit(f"--onnx {onnx}: file not found")
        return str(onnx)
    from har.config import load_params
    from har.serving.model import ModelLoadError, load_model, resolve_tracking_uri

    p = load_params(params)
    try:
        load_model(p.serve.model_uri, resolve_tracking_uri(p.tracking.uri))
    except ModelLoadError as err:
        raise SystemExit(f"{p.serve.model_uri} not loadable ({str(err).splitlines()[0][:160]}); "
                         "promote a model (`har run` / `har promote`) or pass --onnx PATH") from None
    return p.serve.model_uri


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _client(url: str, body: bytes, concurrency: int, n_requests: int, duration: float,
            queue: mp.Queue) -> None:
    import httpx

    async def run() -> tuple[list[float], int]:
        lat: list[float] = []
        errors = 0
        deadline = time.perf_counter() + duration
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            remaining = [n_requests]

            async def worker() -> None:
                nonlocal errors
                while remaining[0] > 0 and time.perf_counter() < deadline:
                    remaining[0] -= 1
                    t0 = time.perf_counter()
                    r = await client.post("/v1/predict", content=body,
                                          headers={"content-type": "application/json"})
                    lat.append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        errors += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return lat, errors

    cpu0 = time.process_time()
    lat, errors = asyncio.run(run())
    queue.put((lat, errors, time.process_time() - cpu0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, help="serve this ONNX file instead of the champion")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--client-processes", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    uri = _model_uri(args.onnx, args.params)
    port = _free_port()
    log_dir = tempfile.mkdtemp(prefix="har-load-log-")
    cmd = [sys.executable, "-m", "har.cli", "serve", "--params", str(args.params), "--model-uri", uri,
           "--port", str(port), "--host", "127.0.0.1", "--workers", str(args.workers),
           "--threads", str(args.threads), "--inference-log-dir", log_dir]
    server = subprocess.Popen(cmd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not become ready")
            time.sleep(0.2)
        window = np.random.default_rng(0).normal(size=(1, 128, 6)).round(5).tolist()
        body = json.dumps({"channels": CHANNELS, "windows": window}).encode()
        # Warm-up: connection setup and first-call allocations stay out of the numbers.
        for _ in range(200):
            httpx.post(f"{url}/v1/predict", content=body, headers={"content-type": "application/json"})
        procs, queue = [], mp.Queue()
        per = max(1, args.concurrency // args.client_processes)
        cpu0 = _cpu_seconds(server.pid)
        t0 = time.perf_counter()
        for _ in range(args.client_processes):
            pr = mp.Process(target=_client, args=(url, body, per, args.requests // args.client_processes,
                                                  args.duration, queue))
            pr.start()
            procs.append(pr)
        parts = [queue.get() for _ in procs]
        wall = time.perf_counter() - t0
        server_cpu = _cpu_seconds(server.pid) - cpu0
        for pr in procs:
            pr.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: uvicorn workers go too
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    lat = np.array([x for p in parts for x in p[0]]) * 1000
    errors = sum(p[1] for p in parts)
    client_cpu = sum(p[2] for p in parts)
    res = {
        "model_uri": uri, "requests": int(len(lat)), "errors": int(errors), "wall_s": wall,
        "req_per_s": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)), "p99_ms": float(np.percentile(lat, 99)),
        "concurrency": args.concurrency, "client_processes": args.client_processes,
        "server_workers": args.workers, "ort_threads": args.threads,
        "client_cpu_s": client_cpu, "server_cpu_s": server_cpu,
        # Load-independent cost: what one core could sustain if the server had it to itself.
        "server_cpu_ms_per_request": server_cpu * 1000 / max(len(lat), 1),
        "server_capacity_rps_per_core": len(lat) / server_cpu if server_cpu else None,
        "cpus": os.cpu_count(), "loadavg_1m_after": os.getloadavg()[0],
        "targets": {},
    }
    res["targets"] = {"ge_1000_rps": res["req_per_s"] >= 1000, "p99_le_20ms": res["p99_ms"] <= 20}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{res['requests']} requests in {wall:.1f} s: {res['req_per_s']:,.0f} req/s, "
          f"p50 {res['p50_ms']:.2f} ms, p90 {res['p90_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
          f"{errors} errors; client CPU {client_cpu:.1f} s, server CPU {server_cpu:.1f} s "
          f"({res['server_cpu_ms_per_request']:.3f} ms/request) of {wall * (os.cpu_count() or 1):.1f} "
          f"core-s; load avg {res['loadavg_1m_after']:.1f}; targets {res['targets']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
