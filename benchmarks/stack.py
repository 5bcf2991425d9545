"""The deployed stack, measured: start-up, a retraining cycle through the worker, API throughput.

Usage: HAR_DATA_MIRROR=../shared/datasets python benchmarks/stack.py \
           [--subjects 1 2 ...] [--model tinyhar] [--epochs 3] [--repeats 3] [--duration 15]

In a scratch clone of this repo (under /tmp, free ports, its own .stack/):

1. `har stack up` on an empty state directory (initdb, migrations, buckets) and again after
   `har stack down` (warm): seconds until every service is healthy;
2. one retraining cycle (caching off, promotion policy gate) through the `har-retrain` deployment on
   the `process` worker, from creating the flow run to its final state, against the same cycle run
   in-process by `har pipeline run --no-cache --promote` (same Prefect server, same MLflow server);
   the two alternate, medians are compared (target overhead ≤ 15 %);
3. `benchmarks/serve_load.py` on the champion loaded from the MLflow server against the same model
   from its ONNX file (target: within 10 % req/s).

Results: benchmarks/results/stack.json (docs/results.md through benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "benchmarks" / "results" / "stack.json"
SERVICES = ("postgres", "s3", "mlflow", "prefect", "worker", "api")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class Bench:
    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_"))}
        self.env.update({"PATH": f"{BIN}:{self.env.get('PATH', '')}", "DO_NOT_TRACK": "1",
                         "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false",
                         "DVC_NO_ANALYTICS": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
        self.ports = dict(zip(SERVICES, _free_ports(len(SERVICES)), strict=True))
        raw = yaml.safe_load((root / "params.yaml").read_text())
        raw["data"]["subjects"] = args.subjects
        raw["train"].update(model=args.model, epochs=args.epochs)
        raw["serve"].update(port=self.ports["api"])
        raw["stack"].update(postgres_port=self.ports["postgres"], s3_port=self.ports["s3"],
                            mlflow_port=self.ports["mlflow"], prefect_port=self.ports["prefect"],
                            worker_health_port=self.ports["worker"], startup_timeout_s=300)
        (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 3600) -> str:
        res = subprocess.run(list(args), cwd=self.root, env={**self.env, **(env or {})},
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-2000:]}\n"
                             f"{res.stderr[-2000:]}")
        return res.stdout

    def har(self, *args: str, **kw: Any) -> str:
        return self.run(str(BIN / "har"), *args, **kw)

    def up(self) -> float:
        self.har("stack", "up")
        return float(json.loads((self.root / ".stack/run/up.json").read_text())["seconds_to_healthy"])

    def use_stack(self) -> None:
        out = self.har("stack", "env")
        self.env.update(dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()))
        self.env["PREFECT_HOME"] = str(self.root / ".stack" / "prefect-client")

    def prefect(self, fn: Any) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def go() -> Any:
            async with get_client() as client:
                return await fn(client)

        with temporary_settings({PREFECT_API_URL: self.env["PREFECT_API_URL"]}):
            return asyncio.run(go())

    def worker_cycle(self) -> float:
        """Create a run of har-retrain the way the scheduler does; seconds until it is final."""
        deployment = self.prefect(lambda c: c.read_deployment_by_name("training-pipeline/har-retrain"))
        t0 = time.perf_counter()
        run = self.prefect(lambda c: c.create_flow_run_from_deployment(
            deployment.id, parameters={"use_cache": False}))
        while True:
            state = self.prefect(lambda c: c.read_flow_run(run.id)).state
            if state is not None and state.is_final():
                break
            time.sleep(0.5)
        if not state.is_completed():
            raise SystemExit(f"worker run {run.id} ended {state.name}: {state.message}")
        return time.perf_counter() - t0

    def inprocess_cycle(self) -> float:
        t0 = time.perf_counter()
        self.har("pipeline", "run", "--no-cache", "--promote")
        return time.perf_counter() - t0

    def serve_load(self, out: Path, duration: float, onnx: Path | None) -> dict[str, Any]:
        args = [str(BIN / "python"), str(REPO / "benchmarks" / "serve_load.py"), "--params",
                str(self.root / "params.yaml"), "--duration", str(duration), "--concurrency", "4",
                "--requests", "1000000", "--out", str(out)]
        if onnx is not None:
            args += ["--onnx", str(onnx)]
        self.run(*args)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, nargs="*", default=None, help="default: all 30")
    ap.add_argument("--model", default="tinyhar")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per HTTP load run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    mirror = os.environ.get("HAR_DATA_MIRROR")
    if not mirror:
        raise SystemExit("set HAR_DATA_MIRROR to the dataset mirror folder (e.g. ../shared/datasets)")
    base = Path(tempfile.mkdtemp(prefix="har-stack-bench-", dir="/tmp"))
    base.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data directory
    bench = Bench(base / "clone", args)
    try:
        cold = bench.up()
        print(f"stack up (empty state): {cold:.1f} s", flush=True)
        bench.har("stack", "down")
        warm = bench.up()
        print(f"stack up (after down):  {warm:.1f} s", flush=True)
        bench.use_stack()
        bench.har("data", "fetch", env={"HAR_DATA_MIRROR": mirror})
        bench.har("data", "push")
        bench.har("pipeline", "deploy")
        # untimed: first-run costs (imports, MLflow experiment, the first champion) on neither side
        bench.worker_cycle()
        worker, inprocess = [], []
        for i in range(args.repeats):
            order = ("worker", "inprocess") if i % 2 == 0 else ("inprocess", "worker")
            for kind in order:
                (worker if kind == "worker" else inprocess).append(
                    bench.worker_cycle() if kind == "worker" else bench.inprocess_cycle())
                print(f"[{i}] {kind}: {(worker if kind == 'worker' else inprocess)[-1]:.1f} s", flush=True)
        tmp = base / "load"
        tmp.mkdir()
        from_registry = bench.serve_load(tmp / "registry.json", args.duration, None)
        from_file = bench.serve_load(tmp / "file.json", args.duration, bench.root / "models" / "model.onnx")
    finally:
        subprocess.run([str(BIN / "har"), "stack", "down"], cwd=bench.root, env=bench.env,
                       capture_output=True, timeout=600)
        shutil.rmtree(base, ignore_errors=True)

    w, d = statistics.median(worker), statistics.median(inprocess)
    rps_registry, rps_file = from_registry["req_per_s"], from_file["req_per_s"]
    result = {
        "config": {"subjects": args.subjects or "all", "model": args.model, "epochs": args.epochs,
                   "repeats": args.repeats, "load_duration_s": args.duration, "load_concurrency": 4},
        "up_cold_s": round(cold, 1),
        "up_warm_s": round(warm, 1),
        "worker_cycle_s": [round(x, 1) for x in worker],
        "inprocess_cycle_s": [round(x, 1) for x in inprocess],
        "worker_median_s": round(w, 1),
        "inprocess_median_s": round(d, 1),
        "worker_overhead_pct": round(100 * (w - d) / d, 1),
        "worker_overhead_target_pct": 15.0,
        "api_rps_registry": round(rps_registry, 1),
        "api_rps_file": round(rps_file, 1),
        "api_rps_diff_pct": round(100 * (rps_registry - rps_file) / rps_file, 1),
        "api_rps_target_pct": 10.0,
        "api_p99_ms_registry": round(from_registry["p99_ms"], 2),
        "api_p99_ms_file": round(from_file["p99_ms"], 2),
        "api_errors": from_registry["errors"] + from_file["errors"],
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
