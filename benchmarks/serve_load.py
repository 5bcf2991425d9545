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

``--overload 200``: the overload run instead. That many connections send single-window requests as
fast as they are answered (a raw HTTP/1.1 client on asyncio streams in ``--client-processes``
processes: httpx would spend more CPU than the server; after a 503 a client waits its Retry-After,
``--ignore-retry-after`` resends at once), while a separate process probes
``/healthz`` every 20 ms. Reported: req/s and p50/p99 of the accepted (200) requests, the count
and latency of the rejected ones (503 from load shedding), client time-outs (10 s), the /healthz
latency, the server-side latency histogram from /metrics and the server's peak RSS. Targets: 0
time-outs, /healthz p99 ≤ 100 ms, 503s answered in ≤ 10 ms. Results:
benchmarks/results/serve_overload.json.
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
WARMUP_S = 2.0  # overload run: the first seconds (connections opening) are left out of percentiles
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


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams sending a prebuilt request."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> tuple[int, float]:
        """(status, Retry-After seconds or 0) of one request/response (reconnects when the server
        closed the connection)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        retry_after = 0.0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"retry-after":
                retry_after = float(value)
        if length:
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return status, retry_after

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _post_bytes(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _overload_client(port: int, body: bytes, connections: int, duration: float, timeout: float,
                     queue: mp.Queue, honour_retry_after: bool = True) -> None:
    """``connections`` raw clients posting ``body`` in a closed loop for ``duration`` s; after a 503
    each waits its Retry-After (as a well-behaved client does) unless ``honour_retry_after`` is off."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    request = _post_bytes("/v1/predict", body)

    async def run() -> tuple[list[tuple[int, float, float]], int, int]:
        out: list[tuple[int, float, float]] = []  # (status, latency, start since the run began)
        timeouts = errors = 0
        began = time.perf_counter()
        deadline = began + duration

        async def worker() -> None:
            nonlocal timeouts, errors
            client = RawClient("127.0.0.1", port, request)
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    status, retry_after = await asyncio.wait_for(client.call(), timeout)
                except TimeoutError:
                    timeouts += 1
                    client.close()
                    client = RawClient("127.0.0.1", port, request)
                    continue
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    client.close()
                    client = RawClient("127.0.0.1", port, request)
                    await asyncio.sleep(0.01)
                    continue
                out.append((status, time.perf_counter() - t0, t0 - began))
                if status == 503 and retry_after and honour_retry_after:
                    await asyncio.sleep(min(retry_after, max(0.0, deadline - time.perf_counter())))
            client.close()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return out, timeouts, errors

    cpu0 = time.process_time()
    out, timeouts, errors = asyncio.run(run())
    queue.put(("load", out, timeouts, errors, time.process_time() - cpu0))


def _health_prober(port: int, duration: float, queue: mp.Queue, interval: float = 0.02) -> None:
    """GET /healthz every ``interval`` s on one connection; its own process, so the load clients'
    event-loop lag does not count against the server."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    async def run() -> tuple[list[float], int]:
        lat: list[float] = []
        failures = 0
        client = RawClient("127.0.0.1", port, request)
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(client.call(), 5.0)
                lat.append(time.perf_counter() - t0)
                failures += status != 200
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                failures += 1
                client.close()
                client = RawClient("127.0.0.1", port, request)
            await asyncio.sleep(interval)
        client.close()
        return lat, failures

    lat, failures = asyncio.run(run())
    queue.put(("health", lat, failures))


def _server_latency(metrics_text: str, status: str) -> dict[str, float | None]:
    """p50/p99 upper bucket bounds of the server's own /v1/predict histogram for ``status``."""
    buckets: list[tuple[float, float]] = []
    for line in metrics_text.splitlines():
        if (line.startswith("har_http_request_duration_seconds_bucket{") and 'route="/v1/predict"' in line
                and f'status="{status}"' in line):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0, "p50_le_ms": None, "p99_le_ms": None}
    total = buckets[-1][1]

    def q(f: float) -> float:
        return next(b for b, c in buckets if c >= f * total) * 1000

    return {"count": total, "p50_le_ms": q(0.5), "p99_le_ms": q(0.99)}


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of ``pid`` in MiB (VmRSS, VmHWM)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(ln.split(":", 1) for ln in lines if ":" in ln)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_overload(url: str, server_pid: int, connections: int, duration: float, client_processes: int,
                 body: bytes, honour_retry_after: bool = True) -> dict[str, object]:
    """The overload run against a started server (also used by benchmarks/serve_probe.py)."""
    import httpx

    port = int(url.rsplit(":", 1)[1])
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_health_prober, args=(port, duration, queue))]
    per = [connections // client_processes + (i < connections % client_processes)
           for i in range(client_processes)]
    procs += [mp.Process(target=_overload_client,
                         args=(port, body, n, duration, 10.0, queue, honour_retry_after)) for n in per]
    cpu0 = _cpu_seconds(server_pid)
    t0 = time.perf_counter()
    for pr in procs:
        pr.start()
    parts = [queue.get(timeout=duration + 120) for _ in procs]
    wall = time.perf_counter() - t0
    server_cpu = _cpu_seconds(server_pid) - cpu0
    for pr in procs:
        pr.join()
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    loads = [p for p in parts if p[0] == "load"]
    health = next(p for p in parts if p[0] == "health")
    results = [r for p in loads for r in p[1]]
    # Percentiles leave out the first WARMUP_S: 200 connections opening at once, first calls
    ok = np.array([lat for status, lat, t in results if status == 200 and t >= WARMUP_S]) * 1000
    shed = np.array([lat for status, lat, t in results if status == 503 and t >= WARMUP_S]) * 1000
    shed_all = np.array([lat for status, lat, _ in results if status == 503]) * 1000
    n_ok = sum(1 for status, _, _ in results if status == 200)
    other = sum(1 for status, _, _ in results if status not in (200, 503))
    hl = np.array(health[1]) * 1000

    def pct(a: np.ndarray, q: float) -> float | None:
        return float(np.percentile(a, q)) if len(a) else None

    res: dict[str, object] = {
        "connections": connections, "duration_s": duration, "wall_s": wall,
        "clients_honour_retry_after": honour_retry_after,
        "warmup_s_left_out_of_percentiles": WARMUP_S,
        "accepted": n_ok, "accepted_req_per_s": n_ok / wall,
        "accepted_p50_ms": pct(ok, 50), "accepted_p99_ms": pct(ok, 99),
        "rejected_503": int(len(shed_all)), "rejected_p50_ms": pct(shed, 50),
        "rejected_p99_ms": pct(shed, 99),
        "rejected_p99_ms_incl_warmup": pct(shed_all, 99),
        "other_status": other, "client_timeouts": sum(p[2] for p in loads),
        "client_errors": sum(p[3] for p in loads),
        "healthz_probes": int(len(hl)), "healthz_failures": health[2], "healthz_p50_ms": pct(hl, 50),
        "healthz_p99_ms": pct(hl, 99), "healthz_max_ms": float(hl.max()) if len(hl) else None,
        "server_side_200": _server_latency(metrics, "200"),
        "server_side_503": _server_latency(metrics, "503"),
        "server_cpu_s": server_cpu, "client_cpu_s": sum(p[4] for p in loads),
        "server_rss_mib": rss_mib(server_pid)[0], "server_peak_rss_mib": rss_mib(server_pid)[1],
    }
    res["targets"] = {"no_client_timeouts": res["client_timeouts"] == 0,
                      "healthz_p99_le_100ms": (res["healthz_p99_ms"] or 1e9) <= 100,
                      "rejected_p99_le_10ms": (res["rejected_p99_ms"] or 0) <= 10}
    return res


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
    ap.add_argument("--overload", type=int, metavar="N", help="the overload run with N connections "
                    "(e.g. 200) instead; results in serve_overload.json")
    ap.add_argument("--ignore-retry-after", action="store_true", help="overload clients resend at once "
                    "after a 503 (a hostile client) instead of waiting the Retry-After")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.out = args.out or (RESULTS.with_name("serve_overload.json") if args.overload else RESULTS)

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
        if args.overload:
            res = run_overload(url, server.pid, args.overload, args.duration, max(2, args.client_processes),
                               body, honour_retry_after=not args.ignore_retry_after)
            res.update(model_uri=uri, cpus=os.cpu_count(), loadavg_1m_after=os.getloadavg()[0])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=2) + "\n")
            print(f"{args.overload} connections, {res['wall_s']:.1f} s: accepted {res['accepted']} "
                  f"({res['accepted_req_per_s']:,.0f} req/s, p50 {res['accepted_p50_ms']:.1f} ms, "
                  f"p99 {res['accepted_p99_ms']:.1f} ms); 503 {res['rejected_503']} (p50 "
                  f"{res['rejected_p50_ms'] or 0:.1f} ms, p99 {res['rejected_p99_ms'] or 0:.1f} ms); "
                  f"time-outs {res['client_timeouts']}, errors {res['client_errors']}, other statuses "
                  f"{res['other_status']}; /healthz p50 {res['healthz_p50_ms']:.1f} ms p99 "
                  f"{res['healthz_p99_ms']:.1f} ms max {res['healthz_max_ms']:.1f} ms "
                  f"({res['healthz_failures']} failed); server side 200 {res['server_side_200']}, 503 "
                  f"{res['server_side_503']}; server peak RSS {res['server_peak_rss_mib']:.0f} MiB; "
                  f"load avg {res['loadavg_1m_after']:.1f}; targets {res['targets']}\nwrote {args.out}")
            return
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
