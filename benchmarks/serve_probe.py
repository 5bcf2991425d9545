"""The hostile-client probe set against a real `har serve`, with the server's memory measured
throughout (issue 14: the API must stay under 1 GB).

Usage: python benchmarks/serve_probe.py [--onnx PATH] [--connections 200] [--duration 20]
       [--schemathesis-examples 300]

Starts `har serve` (``--onnx PATH`` or the champion of ``--params``) on 127.0.0.1 with its log in
a file, samples its RSS every 0.1 s, and runs one phase after another:

1. ``half_sent``: 100 connections send half a request line and stall; each must be closed by the
   server within ``serve.read_timeout_s`` (+2 s).
2. ``abandoned_uploads``: 30 uploads declare 7.5 MB, send 7 MB and stall; each must get a 408 and be
   closed after the read timeout.
3. ``aborted_uploads``: 30 uploads declare 7.5 MB, send 1 MB and close; the server log must have
   one line per upload and no traceback.
4. ``overload``: ``--connections`` connections of single-window requests for ``--duration`` s
   (benchmarks/serve_load.py's overload run, clients honouring Retry-After).
5. ``schemathesis``: the schemathesis CLI against /openapi.json, ``--schemathesis-examples`` per
   operation; must find nothing.

Reported per phase: RSS before, peak and after (MiB), and the phase's checks; overall the peak
RSS (VmHWM). Results: benchmarks/results/serve_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import CHANNELS, _free_port, _model_uri, rss_mib, run_overload

RESULTS = Path(__file__).resolve().parent / "results" / "serve_probe.json"


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mib(self.pid)[0])
            except (OSError, KeyError):
                return

    def phase_peak(self) -> float:
        peak, self.peak = self.peak, rss_mib(self.pid)[0]
        return max(peak, self.peak)


def _closed_within(socks: list[socket.socket], limit: float) -> tuple[int, list[bytes]]:
    """How many sockets the server closed within ``limit`` s, and what each received first."""
    deadline = time.monotonic() + limit
    closed, firsts = 0, []
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
            closed += 1
        except (TimeoutError, OSError):
            pass
        firsts.append(got[:12])
        s.close()
    return closed, firsts


def _upload_head(port: int, declared: int) -> bytes:
    return (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--schemathesis-examples", type=int, default=300)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from har.config import load_params

    serve = load_params(args.params).serve
    uri = _model_uri(args.onnx, args.params)
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="har-probe-"))
    server_log = tmp / "server.log"
    cmd = [sys.executable, "-m", "har.cli", "serve", "--params", str(args.params), "--model-uri", uri,
           "--port", str(port), "--host", "127.0.0.1", "--inference-log-dir", str(tmp / "log")]
    with open(server_log, "wb") as log_fh:
        server = subprocess.Popen(cmd, start_new_session=True, stdout=log_fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    phases: dict[str, dict[str, object]] = {}
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
                raise SystemExit(f"server did not become ready: {server_log.read_text()[-2000:]}")
            time.sleep(0.2)
        sampler = RssSampler(server.pid)
        sampler.start()
        wait = serve.read_timeout_s + 2

        def phase(name: str, result: dict[str, object], before: float) -> None:
            result.update(rss_before_mib=before, rss_peak_mib=sampler.phase_peak(),
                          rss_after_mib=rss_mib(server.pid)[0])
            phases[name] = result
            print(f"{name}: {result}", flush=True)

        before = rss_mib(server.pid)[0]
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        for s in socks:
            s.sendall(b"POST /v1/predict HTT")
        t0 = time.monotonic()
        closed, _ = _closed_within(socks, wait)
        phase("half_sent", {"connections": 100, "closed_by_server": closed,
                            "seconds": time.monotonic() - t0}, before)

        before = rss_mib(server.pid)[0]
        chunk = (b"[" + b"0.123456," * 5 + b"0.1],") * 1000
        socks = []
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(_upload_head(port, 7_500_000) + b'{"channels": ["acc_x"], "windows": [[')
            sent = 0
            while sent < 7_000_000:
                s.sendall(chunk)
                sent += len(chunk)
            socks.append(s)
        time.sleep(1.0)
        held = rss_mib(server.pid)[0]
        closed, firsts = _closed_within(socks, wait)
        phase("abandoned_uploads", {"uploads": 30, "declared_bytes": 7_500_000, "sent_bytes": 7_000_000,
                                    "rss_while_held_mib": held, "closed_by_server": closed,
                                    "answered_408": sum(f.startswith(b"HTTP/1.1 408") for f in firsts)},
              before)

        before = rss_mib(server.pid)[0]
        lines_before = server_log.read_text(errors="replace").count("upload aborted")
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(_upload_head(port, 7_500_000) + b'{"channels": ["acc_x"], "windows": [[' + chunk * 30)
            s.close()
        time.sleep(2.0)
        text = server_log.read_text(errors="replace")
        phase("aborted_uploads", {"uploads": 30, "log_lines": text.count("upload aborted") - lines_before,
                                  "tracebacks_in_log": text.count("Traceback")}, before)

        before = rss_mib(server.pid)[0]
        window = np.random.default_rng(0).normal(size=(1, 128, 6)).round(5).tolist()
        body = json.dumps({"channels": CHANNELS, "windows": window}).encode()
        res = run_overload(url, server.pid, args.connections, args.duration, 2, body)
        phase("overload", {k: res[k] for k in ("connections", "accepted_req_per_s", "accepted_p99_ms",
                                               "rejected_503", "rejected_p99_ms", "client_timeouts",
                                               "healthz_p99_ms", "targets")}, before)

        before = rss_mib(server.pid)[0]
        cli = Path(sys.executable).parent / "schemathesis"
        st = subprocess.run([str(cli), "run", f"{url}/openapi.json", "--checks", "all", "--exclude-checks",
                             "positive_data_acceptance", "--max-examples", str(args.schemathesis_examples),
                             "--generation-deterministic", "--warnings", "off"],
                            capture_output=True, text=True, timeout=900, cwd=tmp,
                            env={**os.environ, "NO_COLOR": "1"})
        summary = [ln.strip() for ln in st.stdout.splitlines() if "generated" in ln]
        last = summary[-1] if summary else st.stdout[-500:]
        phase("schemathesis", {"exit_code": st.returncode, "summary": last}, before)
        sampler.stop.set()
        peak = rss_mib(server.pid)[1]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    res = {"model_uri": uri, "phases": phases, "server_peak_rss_mib": peak,
           "targets": {"peak_rss_under_1gb": peak < 1024,
                       "half_sent_all_closed": phases["half_sent"]["closed_by_server"] == 100,
                       "abandoned_all_closed": phases["abandoned_uploads"]["closed_by_server"] == 30,
                       "aborted_one_line_each": phases["aborted_uploads"]["log_lines"] == 30
                       and phases["aborted_uploads"]["tracebacks_in_log"] == 0,
                       "schemathesis_clean": phases["schemathesis"]["exit_code"] == 0},
           "cpus": os.cpu_count(), "loadavg_1m_after": os.getloadavg()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"server peak RSS {peak:.0f} MiB; targets {res['targets']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
