"""Inference latency: ONNX Runtime against torch eager on the same trained network, in one process.

Usage: python benchmarks/latency.py [--onnx PATH] [--trained DIR] [--model NAME] [--runs 2000]

Default source: the champion (``serve.model_uri`` of ``--params``, resolved through MLflow), else
models/model.onnx; ``--onnx`` names a file instead. The torch side is the trained model that was
exported, ``har.training.bundle.TrainedModel.load(models/trained)`` (its ``.net`` plus the softmax
of the export contract, so both runtimes compute the same probabilities; checked before timing).
Without models/trained (or for a classic model) only ONNX Runtime is timed, and the output says so.

``--model NAME`` (cnn1d, deepconvlstm, tinyhar) compares architectures instead: an untrained
``har.models.build_model(NAME, TrainParams(), 6, 12)`` (seed 0, classes from ``--params``; latency
does not depend on the weight values) is exported with ``har.export.onnx.export_onnx`` to a
temporary folder and timed on both.

``--compare cnn1d sepcnn …`` times several architectures in one run, each exported untrained at
the protocol's 3 s window (``--window-len``, 150 samples): ONNX Runtime fp32 and, for the models
named in ``--int8``, the static int8 export (har.export.quantize, calibrated on ``--window-len``
synthetic windows: latency does not depend on the calibration) beside torch eager. They go to the
``models`` key of latency.json, which the Pareto figure of benchmarks/quality.py reads.

Batch 1: intra-op threads 1 for both runtimes (fastest for single windows; the server's setting).
Batched: ``--batch`` windows per call with ``--batch-threads`` threads. Results go to
benchmarks/results/latency.json (the other keys of the file are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def _time_calls(fn: Callable[[], object], runs: int, warmup: int = 50) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return out / 1e6  # ms


def _throughput(fn: Callable[[], object], batch: int, seconds: float = 2.0) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return n * batch / elapsed


def _stats(ms: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def champion_onnx(params_path: Path) -> tuple[Path | None, str]:
    """The deployed model: ``serve.model_uri`` (registry alias/version or a path), else
    models/model.onnx. Returns (path or None, where it came from)."""
    try:
        from har.config import load_params
        from har.serving.model import parse_model_uri, resolve_tracking_uri, resolve_version

        p = load_params(params_path)
        target = parse_model_uri(p.serve.model_uri)
        if isinstance(target, Path):
            return target, f"serve.model_uri {target}"
        import mlflow.artifacts

        tracking = resolve_tracking_uri(p.tracking.uri)
        mv = resolve_version(target, tracking)
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{target.name}/{mv.version}", dst_path=tempfile.mkdtemp(),
            tracking_uri=tracking))
        found = sorted(local.rglob("*.onnx"))
        if found:
            return found[0], f"{p.serve.model_uri} (version {mv.version})"
        print(f"{p.serve.model_uri}: version {mv.version} holds no .onnx file")
    except Exception as err:  # no registry / no alias: fall back below, and say so
        print(f"serve.model_uri not resolvable ({str(err).splitlines()[0][:120]}); trying models/model.onnx")
    fallback = Path("models/model.onnx")
    return (fallback, str(fallback)) if fallback.is_file() else (None, "none")


def _with_softmax(net):
    import torch

    return torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)).eval()


def untrained_export(name: str, out_dir: Path, params_path: Path, window_len: int = 128):
    """``build_model(name)`` sized by params.yaml's ``train.<name>`` (seed 0), exported by har.export
    → (onnx, torch net)."""
    import torch

    from har.config import load_params
    from har.export.onnx import export_onnx
    from har.models import build_model
    from har.training.bundle import ModelMeta, TrainedModel

    p = load_params(params_path)
    tp, classes = p.train, p.preprocess.classes
    torch.manual_seed(0)
    net = build_model(name, tp, len(CHANNELS), len(classes)).eval()
    meta = ModelMeta(model=name, classes=classes, channels=CHANNELS, rate_hz=50.0, window_len=window_len,
                     window_s=window_len / 50.0, overlap=0.5, train_params=tp.model_dump(mode="json"))
    path = export_onnx(TrainedModel(meta, net=net), out_dir / f"{name}.onnx")
    return path, _with_softmax(net)


def compare(names: list[str], int8: list[str], params_path: Path, window_len: int, runs: int, batch: int,
            batch_threads: int) -> dict[str, dict[str, float]]:
    """ORT fp32 (and int8) against torch eager for each architecture, untrained, at ``window_len``."""
    import torch

    from har.export.quantize import quantize_int8
    from har.serving.model import make_session

    out: dict[str, dict[str, float]] = {}
    rng = np.random.default_rng(0)
    scale = np.array([0.3] * 3 + [0.5] * 3)
    xb = (rng.normal(size=(batch, window_len, len(CHANNELS))) * scale).astype(np.float32)
    tmp = Path(tempfile.mkdtemp())
    for name in names:
        onnx_path, net = untrained_export(name, tmp, params_path, window_len)
        variants = {name: onnx_path}
        if name in int8:
            variants[f"{name}-int8"] = quantize_int8(onnx_path, tmp / f"{name}.int8.onnx", xb)
        t1, tb = torch.from_numpy(xb[:1]), torch.from_numpy(xb)
        with torch.inference_mode():
            torch.set_num_threads(1)
            torch_b1 = _stats(_time_calls(lambda net=net, t1=t1: net(t1), runs))["p50_ms"]
            torch.set_num_threads(batch_threads)
            torch_wps = _throughput(lambda net=net, tb=tb: net(tb), batch)
        for label, path in variants.items():
            s1, sb = make_session(path, 1), make_session(path, batch_threads)
            b1 = _stats(_time_calls(lambda s1=s1: s1.run(["probs"], {"window": xb[:1]}), runs))
            wps = _throughput(lambda sb=sb: sb.run(["probs"], {"window": xb}), batch)
            out[label] = {"ort_b1_p50_ms": b1["p50_ms"], "ort_b1_p99_ms": b1["p99_ms"],
                          "ort_batched_wps": wps, "torch_b1_p50_ms": torch_b1, "torch_batched_wps": torch_wps,
                          "speedup_b1_p50": torch_b1 / b1["p50_ms"], "onnx_bytes": path.stat().st_size}
            print(f"{label:<16} ORT b1 p50 {b1['p50_ms']:.4f} ms ({torch_b1 / b1['p50_ms']:.1f}× torch "
                  f"{torch_b1:.4f}), batched {wps:,.0f} windows/s, {path.stat().st_size:,} bytes", flush=True)
    return out


def trained_torch(trained_dir: Path):
    """The torch side for a deployed ONNX: models/trained's network (+ softmax), or None and why."""
    from har.training.bundle import TrainedModel

    if not (trained_dir / "meta.json").is_file():
        return None, f"{trained_dir}: no trained model (run `har train`); torch eager NOT timed"
    model = TrainedModel.load(trained_dir)
    if not model.is_deep:
        return None, f"{trained_dir}: a {model.meta.model} model has no torch network; torch eager NOT timed"
    return _with_softmax(model.net), f"TrainedModel.load({trained_dir}).net ({model.meta.model}) + softmax"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, help="ONNX file to time (default: the champion, models/model.onnx)")
    ap.add_argument("--trained", type=Path, default=Path("models/trained"),
                    help="`har train` output whose network is the torch side (default: models/trained)")
    ap.add_argument("--model", help="time an untrained build_model(NAME) exported to a temp dir instead")
    ap.add_argument("--compare", nargs="+", metavar="NAME",
                    help="time these architectures (untrained, --window-len) into latency.json's `models`")
    ap.add_argument("--int8", nargs="*", default=["sepcnn"], metavar="NAME",
                    help="with --compare: also the int8 export of these")
    ap.add_argument("--window-len", type=int, default=150, help="with --compare: samples per window")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batch-threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from har.serving.model import make_session, open_onnx

    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.compare:
        models = compare(args.compare, args.int8, args.params, args.window_len, args.runs, args.batch,
                         args.batch_threads)
        previous["models"] = {**previous.get("models", {}), **models}
        previous["models_config"] = {"window_len": args.window_len, "batch": args.batch,
                                     "batch_threads": args.batch_threads, "runs": args.runs,
                                     "loadavg_1m_at_end": os.getloadavg()[0],
                                     "measured": time.strftime("%Y-%m-%d")}
        args.out.write_text(json.dumps(previous, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    if args.model:
        onnx_path, net = untrained_export(args.model, Path(tempfile.mkdtemp()), args.params)
        source = f"untrained har.models.build_model({args.model!r}, TrainParams()) via har.export"
        torch_source = "the same network + softmax"
    else:
        onnx_path, source = (args.onnx, str(args.onnx)) if args.onnx else champion_onnx(args.params)
        if onnx_path is None or not onnx_path.is_file():
            raise SystemExit(f"no ONNX model to time ({onnx_path or source}): run `har export` / "
                             "`har promote`, pass --onnx PATH, or use --model NAME")
        net, torch_source = trained_torch(args.trained)
    spec = open_onnx(onnx_path, str(onnx_path)).spec
    rng = np.random.default_rng(0)
    scale = np.array([0.3] * 3 + [0.5] * (len(spec.channels) - 3))[: len(spec.channels)]
    xb = (rng.normal(size=(args.batch, spec.window_len, len(spec.channels))) * scale).astype(np.float32)
    x1 = xb[:1].copy()
    s1, sb = make_session(onnx_path, 1), make_session(onnx_path, args.batch_threads)

    results: dict[str, object] = {
        "model": spec.model_type, "source": source, "onnx": str(onnx_path), "torch_source": torch_source,
        "window": [spec.window_len, len(spec.channels)], "batch": args.batch,
        "batch_threads": args.batch_threads, "runs": args.runs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_1m_at_start": os.getloadavg()[0],
                    "onnxruntime": ort.__version__, "torch": torch.__version__},
    }
    if net is not None:
        torch.set_num_threads(1)
        with torch.inference_mode():
            diff = float(np.abs(s1.run(["probs"], {"window": xb[:8]})[0]
                                - net(torch.from_numpy(xb[:8])).numpy()).max())
        results["parity_max_abs_diff"] = diff
        if diff > 1e-4:
            print(f"WARNING: {torch_source} differs from {onnx_path} (max |Δp| {diff:.2g}): "
                  "models/trained is not the exported model; the comparison is architecture-only")
    if net is not None:
        t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)
        with torch.inference_mode():
            torch.set_num_threads(1)
            results["torch_eager_b1"] = _stats(_time_calls(lambda: net(t1), args.runs))
            torch.set_num_threads(args.batch_threads)
            results["torch_eager_batched_wps"] = _throughput(lambda: net(tb), args.batch)
    else:
        print(torch_source)
    results["ort_b1"] = _stats(_time_calls(lambda: s1.run(["probs"], {"window": x1}), args.runs))
    results["ort_batched_wps"] = _throughput(lambda: sb.run(["probs"], {"window": xb}), args.batch)
    results["loadavg_1m_at_end"] = os.getloadavg()[0]
    if net is not None:
        results["speedup_b1_p50"] = results["torch_eager_b1"]["p50_ms"] / results["ort_b1"]["p50_ms"]
        results["speedup_batched"] = results["ort_batched_wps"] / results["torch_eager_batched_wps"]
    results["targets"] = {"b1_p50_ms_le_0.1": results["ort_b1"]["p50_ms"] <= 0.1,
                          "speedup_ge_5x": results.get("speedup_b1_p50", 0) >= 5,
                          "batched_ge_50k_wps": results["ort_batched_wps"] >= 50_000}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    kept = {k: previous[k] for k in ("models", "models_config") if k in previous}
    args.out.write_text(json.dumps({**results, **kept}, indent=2) + "\n")

    print(f"\nmodel: {spec.model_type} from {source}; torch: {torch_source}")
    print(f"{os.cpu_count()} CPUs, load avg {results['machine']['loadavg_1m_at_start']:.1f} at start")
    print(f"{'runtime':<14}{'b1 p50 ms':>11}{'b1 p99 ms':>11}{f'b{args.batch} win/s':>14}")
    ob = results["ort_b1"]
    if net is not None:
        te = results["torch_eager_b1"]
        print(f"{'torch eager':<14}{te['p50_ms']:>11.4f}{te['p99_ms']:>11.4f}"
              f"{results['torch_eager_batched_wps']:>14,.0f}")
    print(f"{'onnxruntime':<14}{ob['p50_ms']:>11.4f}{ob['p99_ms']:>11.4f}{results['ort_batched_wps']:>14,.0f}")
    if net is not None:
        print(f"speed-up b1 p50: {results['speedup_b1_p50']:.1f}x, "
              f"batched: {results['speedup_batched']:.1f}x")
    print(f"targets: {results['targets']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
