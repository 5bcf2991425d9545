"""Prefect orchestration overhead: the stages called directly vs. the same stages in the flow.

Usage: HAR_DATA_MIRROR=../shared/datasets python benchmarks/orchestration.py \
           [--subjects 1 2 3 ...] [--model tinyhar] [--epochs 3] [--repeats 1]

One process, one scratch project (a temp dir with this repo's params.yaml and GX suites): stage
imports are warmed up and the Prefect API (ephemeral) is started before timing; then, per repeat,
the stages run directly and then via ``training_pipeline(use_cache=False)``. Caching is off so
the flow does the same work; the difference is task/flow state tracking, artifacts, logging.
Results: benchmarks/results/orchestration.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for key, value in {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                   "MLFLOW_ENABLE_TELEMETRY": "false", "GX_ANALYTICS_ENABLED": "false"}.items():
    os.environ.setdefault(key, value)
sys.path.insert(0, str(REPO))


def _project(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    shutil.copytree(REPO / "great_expectations", root / "great_expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["subjects"] = args.subjects
    raw["train"].update(model=args.model, epochs=args.epochs)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return {"train.model": args.model, "train.epochs": args.epochs, "data.subjects": args.subjects}


def run_direct(params_path: Path) -> float:
    """Every dvc.yaml stage, called directly (what `har run` does), with the flow's policy."""
    from har.config import load_params
    from har.pipeline import load_pipeline
    from har.stages import STAGES

    t0 = time.perf_counter()
    p = load_params(params_path, {"registry.promotion_policy": "gate"})
    for stage in load_pipeline(p):
        STAGES[stage.name](p)
    return time.perf_counter() - t0


def run_flow(params_path: Path) -> float:
    from flows.training import training_pipeline

    t0 = time.perf_counter()
    # policy gate: the same registry work as run_direct
    state = training_pipeline(params_path=str(params_path), use_cache=False, return_state=True,
                              promotion_policy="gate")
    if not state.is_completed():
        raise SystemExit(f"flow ended {state.name}: {state.message}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, nargs="*", default=None, help="default: all 30")
    ap.add_argument("--model", default="tinyhar")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/orchestration.json")
    args = ap.parse_args()
    if not os.environ.get("HAR_DATA_MIRROR"):
        raise SystemExit("set HAR_DATA_MIRROR to the dataset mirror (e.g. ../shared/datasets)")

    root = Path(tempfile.mkdtemp(prefix="har-orch-bench-"))
    cwd = Path.cwd()
    try:
        config = _project(root, args)
        os.chdir(root)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
        os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))
        params = root / "params.yaml"
        # Warm-up, untimed: stage imports (torch, mlflow, GX) and the Prefect API start.
        t0 = time.perf_counter()
        from prefect import flow

        import flows.training  # noqa: F401

        @flow(name="warmup")
        def warmup() -> int:
            return 1

        warmup()
        startup = time.perf_counter() - t0
        from har import stages  # imports every stage's libraries (torch, mlflow, GX, ONNX)
        from har.config import load_params

        stages.data.fetch(load_params(params))  # the one-time copy from the mirror is not measured

        # One untimed direct pass: the stages' own first-call costs (lazy imports inside them, the
        # ONNX exporter, GX context, MLflow schema creation) would otherwise land on whichever ran first.
        run_direct(params)
        direct, orchestrated = [], []
        for i in range(args.repeats):
            # alternate the order so neither side always gets the warmer page cache
            order = ("direct", "flow") if i % 2 == 0 else ("flow", "direct")
            for kind in order:
                if kind == "direct":
                    direct.append(run_direct(params))
                else:
                    orchestrated.append(run_flow(params))
                print(f"[{i}] {kind} {(direct if kind == 'direct' else orchestrated)[-1]:.1f} s", flush=True)
    finally:
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)

    d, f = statistics.median(direct), statistics.median(orchestrated)
    result = {
        "config": {**config, "repeats": args.repeats},
        "direct_s": [round(x, 2) for x in direct],
        "flow_s": [round(x, 2) for x in orchestrated],
        "direct_median_s": round(d, 2),
        "flow_median_s": round(f, 2),
        "overhead_s": round(f - d, 2),
        "overhead_pct": round(100 * (f - d) / d, 2),
        "target_pct": 10.0,
        "prefect_startup_s": round(startup, 2),
        "note": "flow with use_cache=False against Prefect's ephemeral API; startup not in flow_s",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
