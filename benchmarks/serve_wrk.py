"""Tail latency of `har serve` measured by wrk, a C client (the Python client's own event-loop
stalls hide the server's tail).

Usage: python benchmarks/serve_wrk.py [--onnx PATH] [--connections 4 16] [--duration 20]
       [--threads 1] [--windows 1]

Starts `har serve` in a subprocess on 127.0.0.1 at a free port (champion of ``--params``, or
``--onnx PATH``), then for each ``--connections`` value runs ``wrk`` for ``--duration`` seconds on
``POST /v1/predict`` (``--windows`` random 128×6 windows per request) and on ``GET /healthz``.
Percentiles come from wrk's own latency histogram (a Lua ``done`` hook prints them as JSON); wrk
runs with ``--threads`` threads (1: the machine has two cores and the server needs one). Non-2xx
answers and socket errors are reported, not hidden. Needs the ``wrk`` binary (`apt-get install
wrk`). Results: benchmarks/results/serve_wrk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import CHANNELS, _free_port, _model_uri

RESULTS = Path(__file__).resolve().parent / "results" / "serve_wrk.json"

# wrk's Lua hooks: a fixed body from a file, and the summary as one JSON line on stdout.
LUA = r"""
local body_path = os.getenv("WRK_BODY")
if body_path and body_path ~= "" then
  local f = assert(io.open(body_path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def run_wrk(url: str, connections: int, duration: float, threads: int, body: Path | None,
            lua: Path) -> dict[str, float]:
    cmd = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{duration:.0f}s",
           "--timeout", "10s", "-s", str(lua), url]
    env = {**os.environ, "WRK_BODY": str(body) if body else ""}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    raw = json.loads(line[len("WRKJSON "):])
    secs = raw["duration_us"] / 1e6
    return {"connections": connections, "requests": raw["requests"], "req_per_s": raw["requests"] / secs,
            "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "p999_ms": raw["p999_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "non_2xx": raw["non2xx"], "socket_errors": raw["connect"] + raw["read"] + raw["write"],
            "timeouts": raw["timeout"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, help="serve this ONNX file instead of the champion")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--connections", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--windows", type=int, default=1, help="windows per /v1/predict request")
    ap.add_argument("--label", default="", help="free text stored with the results (e.g. the commit)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    uri = _model_uri(args.onnx, args.params)
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="har-wrk-"))
    lua = tmp / "har.lua"
    lua.write_text(LUA)
    body = tmp / "body.json"
    window = np.random.default_rng(0).normal(size=(args.windows, 128, 6)).round(5).tolist()
    body.write_text(json.dumps({"channels": CHANNELS, "windows": window}))
    cmd = [sys.executable, "-m", "har.cli", "serve", "--params", str(args.params), "--model-uri", uri,
           "--port", str(port), "--host", "127.0.0.1", "--inference-log-dir", str(tmp / "log")]
    server = subprocess.Popen(cmd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    runs: list[dict[str, object]] = []
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
        run_wrk(f"{url}/v1/predict", 2, 3, 1, body, lua)  # warm-up, not reported
        for c in args.connections:
            for route, b in (("/v1/predict", body), ("/healthz", None)):
                r = run_wrk(f"{url}{route}", c, args.duration, args.threads, b, lua)
                r["route"] = route
                runs.append(r)
                print(f"{route:12s} c={c:3d}: {r['req_per_s']:7,.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                      f"p90 {r['p90_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  p99.9 {r['p999_ms']:.2f} ms  "
                      f"max {r['max_ms']:.1f} ms  non-2xx {r['non_2xx']}  errors {r['socket_errors']}  "
                      f"timeouts {r['timeouts']}", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)

    targets = {}
    for r in runs:
        if r["route"] == "/v1/predict" and r["connections"] in (4, 16):
            limit = 10.0 if r["connections"] == 4 else 25.0
            targets[f"predict_p99_le_{limit:g}ms_at_{r['connections']}"] = r["p99_ms"] <= limit
    res = {"model_uri": uri, "label": args.label, "windows_per_request": args.windows,
           "duration_s": args.duration, "wrk_threads": args.threads, "cpus": os.cpu_count(),
           "loadavg_1m_after": os.getloadavg()[0], "runs": runs, "targets": targets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"targets {targets}; load avg {res['loadavg_1m_after']:.1f}\nwrote {args.out}")


if __name__ == "__main__":
    main()
