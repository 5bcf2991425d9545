"""Training at scale, measured: parallel CV folds and tuning trials on Dask, distributed
data-parallel training and mixed precision.

Usage: python benchmarks/scale.py [--only cv tune ddp precision] [--epochs 3] [--nproc 2] [--model cnn1d]

Needs all of HAPT windowed in data/processed (`HAR_DATA_MIRROR=../shared/datasets har run --until
validate_windows`). Each section is a ``measure_*`` function returning a dict, stored under its own
key of benchmarks/results/scale.json; the keys of sections not run are kept.
- ``cv`` / ``cv_deep``: the 10-fold subject protocol of ``classic`` / ``sepcnn`` (a few epochs),
  folds in turn in one process (`har evaluate --cv --workers 1`, train.num_threads 2 and 1) against
  the Prefect flow on a Dask LocalCluster of 2 single-threaded workers (`--workers 2`); the flow's
  time includes starting the cluster, not the Prefect API (started once before, as a server would
  be); the per-fold macro-F1 of both must agree;
- ``tune``: trials per hour of `har tune` (TPE, cnn1d, tune.workers 2 on Dask) with the median pruner
  and without pruning, the same budget and seed;
- ``ddp``: training epochs per second, `har train` in one process vs `har train --nproc N`, the same
  global batch (train.batch_size) and train.num_threads (which the N processes share); one process
  on one thread too, which tells the threading's share of a difference from the processes'. The time
  is the training loop's on rank 0 (reports/train/metrics.json train_seconds: steps and validation,
  not process start-up or MLflow logging); the load average beside each run says how busy the
  machine was;
- ``precision``: fp32 vs bf16 autocast (train.precision) in one process: epochs per second and the
  validation and test macro-F1 of the model each one leaves.
Epochs are fixed (min_epochs = epochs: no early stop) so both sides do the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROCESSED = REPO / "data/processed"
RESULTS = REPO / "benchmarks/results/scale.json"
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


def _machine() -> dict[str, Any]:
    import torch

    from har.training.distributed import available_cpus

    return {"cpu": platform.processor() or platform.machine(), "cpus": available_cpus(),
            "torch": torch.__version__, "gpus": torch.cuda.device_count()}


def _project(root: Path, model: str, epochs: int, **train: Any) -> Path:
    """A scratch project over the repo's windows: this repo's params.yaml, outputs under ``root``."""
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["preprocess"]["out_dir"] = str(PROCESSED)
    raw["train"].update(model=model, epochs=epochs, min_epochs=epochs, out_dir=str(root / "models"),
                        reports_dir=str(root / "reports/train"), **train)
    raw["tracking"].update(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_dir=str(root / "mlartifacts"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root / "params.yaml"


def _cv_project(root: Path, **evaluate: Any) -> Path:
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["interim_path"] = str(REPO / raw["data"]["interim_path"])
    raw["evaluate"].update(cv_out_dir=str(root / "cv"), **evaluate)
    raw["tracking"].update(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_dir=str(root / "mlartifacts"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root / "params.yaml"


def measure_cv(*, model: str = "classic", workers: int = 2, epochs: int | None = None) -> dict[str, Any]:
    """The 10-fold protocol of ``model``: in turn in this process (train.num_threads as configured,
    and on one thread) vs the Dask flow with ``workers`` single-threaded workers."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.cv import run_cv
    from har.config import load_params
    from har.stages.model import evaluate_cv

    out: dict[str, Any] = {"model": model, "workers": workers, "epochs": epochs}
    folds: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="har-scale-cv-") as tmp:
        params = _cv_project(Path(tmp), **({"cv_epochs": epochs} if epochs else {}))
        threads = load_params(params).train.num_threads
        for name, t in (("serial", threads), ("serial_1thread", 1)):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            res = evaluate_cv(load_params(params, {"evaluate.cv_workers": 1, "train.num_threads": t,
                                                   "evaluate.cv_out_dir": str(Path(tmp) / name)}),
                              models=[model], show_progress=False)
            out[name] = {"seconds": round(time.perf_counter() - t0, 1), "threads": t,
                         "load_avg_1m_before": round(load, 2)}
            folds[name] = _folds(res)
            print(f"cv: {name}: {out[name]}", flush=True)
        with prefect_test_harness(server_startup_timeout=120):  # the API is up before the clock starts
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            res = run_cv(str(params), models=[model], overrides={
                "evaluate.cv_workers": workers, "evaluate.cv_out_dir": str(Path(tmp) / "dask")})
            out["dask"] = {"seconds": round(time.perf_counter() - t0, 1),
                           "load_avg_1m_before": round(load, 2), "threads_per_worker": 1}
            folds["dask"] = _folds(res)
    out["folds_equal"] = folds["dask"] == folds["serial_1thread"]  # one thread each: the same sums
    out["macro_f1_mean"] = round(sum(folds["serial"].values()) / len(folds["serial"]), 4)
    out["speedup"] = round(out["serial"]["seconds"] / out["dask"]["seconds"], 3)
    out["speedup_vs_1thread"] = round(out["serial_1thread"]["seconds"] / out["dask"]["seconds"], 3)
    out |= {"machine": _machine(), "measured": time.strftime("%Y-%m-%d")}
    print(f"cv: {out}", flush=True)
    return out


def _folds(result: dict[str, Any]) -> dict[int, float]:
    """Fold → macro-F1 of a CV result's table."""
    import pandas as pd

    table = pd.read_csv(result["paths"]["folds"])
    return dict(zip(table["fold"].astype(int), table["macro_f1"].round(10), strict=True))


def measure_tune(*, model: str = "cnn1d", n_trials: int = 8, epochs: int = 8,
                 workers: int = 2) -> dict[str, Any]:
    """Trials per hour of the Dask tuning flow, median pruner vs none (same sampler, seed, budget)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.tuning import tune_flow

    out: dict[str, Any] = {"model": model, "n_trials": n_trials, "epochs_per_trial": epochs,
                           "workers": workers, "sampler": "tpe"}
    with tempfile.TemporaryDirectory(prefix="har-scale-tune-") as tmp, \
            prefect_test_harness(server_startup_timeout=120):
        for pruner in ("none", "median"):
            root = Path(tmp) / pruner
            params = _project(root, model, epochs)
            overrides = {"tune.model": model, "tune.pruner": pruner, "tune.n_trials": n_trials,
                         "tune.epochs": epochs, "tune.workers": workers, "tune.timeout_s": None,
                         "tune.storage": f"sqlite:///{root / 'optuna.db'}",
                         "tune.out_dir": str(root / "tune")}
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            res = tune_flow(params_path=str(params), overrides=overrides)
            seconds = time.perf_counter() - t0
            finished = res["n_finished"]
            out[pruner] = {"seconds": round(seconds, 1), "trials": res["trials"],
                           "trials_per_hour": round(3600 * finished / seconds, 1),
                           "best_val_macro_f1": round(res["best_value"], 4),
                           "load_avg_1m_before": round(load, 2)}
            print(f"tune: {pruner}: {out[pruner]}", flush=True)
    out["pruning_speedup"] = round(out["median"]["trials_per_hour"] / out["none"]["trials_per_hour"], 3)
    out |= {"machine": _machine(), "measured": time.strftime("%Y-%m-%d")}
    return out


def measure_ddp(*, model: str = "cnn1d", epochs: int = 3, nproc: int = 2, batch_size: int = 64,
                threads: int = 2) -> dict[str, Any]:
    """`har train --nproc 1` vs `--nproc N` on all of HAPT with the same global batch and threads."""
    runs: dict[str, dict[str, Any]] = {}
    # the project's MLflow store, not one this shell points at
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    configs = {"nproc1": (1, threads), "nproc1_1thread": (1, 1), f"nproc{nproc}": (nproc, threads)}
    with tempfile.TemporaryDirectory(prefix="har-scale-ddp-") as tmp:
        for name, (n, t) in configs.items():
            params = _project(Path(tmp) / name, model, epochs, batch_size=batch_size, num_threads=t)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "har.cli", "train", "--nproc", str(n),
                                   "--params", str(params)], cwd=params.parent, env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"har train --nproc {n} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
            m = json.loads((params.parent / "reports/train/metrics.json").read_text())
            runs[name] = {"processes": n, "threads": t, "epochs": m["epochs_run"],
                          "train_seconds": round(m["train_seconds"], 2),
                          "epochs_per_s": round(m["epochs_run"] / m["train_seconds"], 4),
                          "wall_s": round(wall, 1), "val_macro_f1": round(m["val_macro_f1"], 4),
                          "load_avg_1m_before": round(load, 2)}
            print(f"ddp: {name}: {runs[name]}", flush=True)
    speed = {name: r["epochs_per_s"] for name, r in runs.items()}
    return {"model": model, "epochs": epochs, "global_batch": batch_size, "nproc": nproc, "runs": runs,
            "speedup": round(speed[f"nproc{nproc}"] / speed["nproc1"], 3),
            "speedup_vs_1thread": round(speed[f"nproc{nproc}"] / speed["nproc1_1thread"], 3),
            "machine": _machine(), "measured": time.strftime("%Y-%m-%d")}


def measure_precision(*, model: str = "cnn1d", epochs: int = 3, threads: int = 2) -> dict[str, Any]:
    """fp32 vs bf16 autocast, one process, the same seed: speed and validation/test macro-F1."""
    from har.config import load_params
    from har.evaluation.metrics import classification_metrics
    from har.stages.model import model_meta
    from har.training.data import load_split_data
    from har.training.train import fit_model

    out: dict[str, Any] = {"model": model, "epochs": epochs}
    with tempfile.TemporaryDirectory(prefix="har-scale-precision-") as tmp:
        p = load_params(_project(Path(tmp), model, epochs, num_threads=threads))
        data = load_split_data(p.preprocess.out_dir, p.preprocess.classes)
        (X, y), (Xv, yv), (Xt, yt) = data.part("train"), data.part("val"), data.part("test")
        for precision in ("fp32", "bf16"):
            p.train.precision = precision
            load = os.getloadavg()[0]
            trained, rep = fit_model(p.train, model_meta(p, data), X, y, Xv, yv, show_progress=False)
            test = classification_metrics(yt, trained.predict_proba(Xt).argmax(1), p.preprocess.classes)
            out[precision] = {"epochs": rep.epochs_run, "train_seconds": round(rep.train_seconds, 2),
                              "epochs_per_s": round(rep.epochs_run / rep.train_seconds, 4),
                              "val_macro_f1": round(rep.val_macro_f1, 4),
                              "test_macro_f1": round(float(test["macro_f1"]), 4),
                              "load_avg_1m_before": round(load, 2)}
            print(f"precision: {precision}: {out[precision]}", flush=True)
    out["bf16_speedup"] = round(out["bf16"]["epochs_per_s"] / out["fp32"]["epochs_per_s"], 3)
    out |= {"device": "cpu", "threads": p.train.num_threads, "machine": _machine(),
            "measured": time.strftime("%Y-%m-%d")}
    return out


def main() -> None:
    sections: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "cv": lambda a: measure_cv(workers=a.workers),
        "cv_deep": lambda a: measure_cv(model="sepcnn", workers=a.workers, epochs=a.cv_epochs),
        "tune": lambda a: measure_tune(model=a.model, workers=a.workers, n_trials=a.trials,
                                       epochs=a.tune_epochs),
        "ddp": lambda a: measure_ddp(model=a.model, epochs=a.epochs, nproc=a.nproc, batch_size=a.batch_size,
                                     threads=a.threads),
        "precision": lambda a: measure_precision(model=a.model, epochs=a.epochs, threads=a.threads),
    }
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(sections), default=sorted(sections))
    ap.add_argument("--model", default="cnn1d")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch of the ddp runs")
    ap.add_argument("--threads", type=int, default=2, help="train.num_threads (ddp: of all processes)")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers of the cv and tune sections")
    ap.add_argument("--cv-epochs", type=int, default=5, help="cv_deep: epochs per fold")
    ap.add_argument("--trials", type=int, default=8, help="tune: trials per study")
    ap.add_argument("--tune-epochs", type=int, default=8, help="tune: epochs per trial")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not (PROCESSED / "windows.npz").is_file():
        raise SystemExit(f"{PROCESSED}/windows.npz missing: run "
                         "`HAR_DATA_MIRROR=../shared/datasets har run --until validate_windows` first")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.only:
        results[name] = sections[name](args)
        # written after each section: a later failure keeps what was measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in args.only}, indent=2))
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
