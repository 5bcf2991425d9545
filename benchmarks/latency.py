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

Batch 1: intra-op threads 1 for both runtimes (fastest for single windows; the server's setting).
Batched: ``--batch`` windows per call with ``--batch-threads`` threads. Results go to
benchmarks/results/latency.json.
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


def untrained_export(name: str, out_dir: Path, params_path: Path):
    """``build_model(name, TrainParams(), 6, 12)`` (seed 0) exported by har.export → (onnx, torch net)."""
    import torch

    from har.config import TrainParams, load_params
    from har.export.onnx import export_onnx
    from har.models import build_model
    from har.training.bundle import ModelMeta, TrainedModel

    tp = TrainParams()
    classes = load_params(params_path).preprocess.classes
    torch.manual_seed(0)
    net = build_model(name, tp, len(CHANNELS), len(classes)).eval()
    meta = ModelMeta(model=name, classes=classes, channels=CHANNELS, rate_hz=50.0, window_len=128,
                     window_s=2.56, overlap=0.5, train_params=tp.model_dump(mode="json"))
    path = export_onnx(TrainedModel(meta, net=net), out_dir / f"{name}.onnx")
    return path, _with_softmax(net)


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
    ap.add_argument("--model", choices=["cnn1d", "deepconvlstm", "tinyhar"],
                    help="time an untrained build_model(NAME) exported to a temp dir instead")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batch-threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from har.serving.model import make_session, open_onnx

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
    args.out.write_text(json.dumps(results, indent=2) + "\n")

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
