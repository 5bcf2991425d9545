"""Inference latency: ONNX Runtime against torch eager on the same model, in one process.

Usage: python benchmarks/latency.py [--onnx PATH] [--model cnn1d] [--runs 2000]

The torch model is built with ``har.models.build_model`` (architecture from ``--model``, else the
ONNX file's ``har.model`` metadata, else params ``train.model``; random weights: latency does not
depend on their values), wrapped with the softmax of the export contract, and exported to a
temporary ONNX file, so both runtimes execute exactly the same network. If ``har.models`` is
missing, the serving fixture model is used and the output says so. The deployed ONNX (``--onnx``,
else ``serve.model_uri``, else models/model.onnx) is timed with ONNX Runtime as well when it exists.

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


def _deployed_onnx(arg: str | None, params_path: Path) -> Path | None:
    if arg:
        return Path(arg)
    try:
        from har.config import load_params
        from har.serving.model import parse_model_uri, resolve_tracking_uri

        p = load_params(params_path)
        target = parse_model_uri(p.serve.model_uri)
        if isinstance(target, Path):
            return target
        import mlflow.artifacts

        from har.serving.model import resolve_version

        mv = resolve_version(target, resolve_tracking_uri(p.tracking.uri))
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{target.name}/{mv.version}", dst_path=tempfile.mkdtemp(),
            tracking_uri=resolve_tracking_uri(p.tracking.uri)))
        found = sorted(local.rglob("model.onnx"))
        if found:
            return found[0]
    except Exception as err:  # no registry / no model: fall back below, and say so
        print(f"serve.model_uri not resolvable ({str(err).splitlines()[0][:120]}); "
              "trying models/model.onnx")
    fallback = Path("models/model.onnx")
    return fallback if fallback.is_file() else None


def _torch_model(name: str, params_path: Path, n_channels: int, n_classes: int):  # noqa: ANN202
    import torch

    try:
        from har.config import load_params
        from har.models import build_model

        tp = load_params(params_path).train
        net = build_model(name, tp, n_channels, n_classes)
        source = f"har.models.build_model({name!r}) + softmax (random weights)"
    except Exception as err:  # har.models not there (yet) or the name is not a deep model
        from har.serving.fixture_model import build_tiny_model

        print(f"har.models unusable ({err}); using the serving fixture model instead")
        return build_tiny_model(n_channels, n_classes), "har.serving.fixture_model (fallback)"

    class WithSoftmax(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(x), dim=1)

    return WithSoftmax(net).eval(), source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", help="deployed ONNX file (default: serve.model_uri, models/model.onnx)")
    ap.add_argument("--model", help="architecture for the torch/ONNX comparison")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batch-threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from har.serving.fixture_model import export_onnx
    from har.serving.model import make_session, open_onnx

    deployed = _deployed_onnx(args.onnx, args.params)
    spec = open_onnx(deployed, str(deployed)).spec if deployed and deployed.is_file() else None
    classes = spec.classes if spec else [f"c{i}" for i in range(12)]
    channels = spec.channels if spec else ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    window_len = spec.window_len if spec else 128
    name = args.model or (spec.model_type if spec and spec.model_type != "unknown" else None)
    if name is None:
        from har.config import load_params

        name = load_params(args.params).train.model
    model, source = _torch_model(name, args.params, len(channels), len(classes))

    tmp = Path(tempfile.mkdtemp()) / "bench.onnx"
    export_onnx(model, tmp, classes, channels, window_len=window_len, model_type=name)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(1, window_len, len(channels))).astype(np.float32)
    xb = rng.normal(size=(args.batch, window_len, len(channels))).astype(np.float32)
    t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)

    results: dict[str, object] = {
        "model": name, "torch_model_source": source, "window": [window_len, len(channels)],
        "batch": args.batch, "batch_threads": args.batch_threads, "runs": args.runs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_1m_at_start": os.getloadavg()[0],
                    "onnxruntime": ort.__version__, "torch": torch.__version__},
    }
    s1, sb = make_session(tmp, 1), make_session(tmp, args.batch_threads)
    torch.set_num_threads(1)
    with torch.inference_mode():
        np.testing.assert_allclose(s1.run(["probs"], {"window": xb[:8]})[0], model(tb[:8]).numpy(),
                                   atol=1e-4)
        results["torch_eager_b1"] = _stats(_time_calls(lambda: model(t1), args.runs))
        torch.set_num_threads(args.batch_threads)
        results["torch_eager_batched_wps"] = _throughput(lambda: model(tb), args.batch)
    results["ort_b1"] = _stats(_time_calls(lambda: s1.run(["probs"], {"window": x1}), args.runs))
    results["ort_batched_wps"] = _throughput(lambda: sb.run(["probs"], {"window": xb}), args.batch)
    results["speedup_b1_p50"] = results["torch_eager_b1"]["p50_ms"] / results["ort_b1"]["p50_ms"]
    results["speedup_batched"] = results["ort_batched_wps"] / results["torch_eager_batched_wps"]
    if deployed and deployed.is_file():
        d1, db = make_session(deployed, 1), make_session(deployed, args.batch_threads)
        results["deployed"] = {
            "path": str(deployed), "model_type": spec.model_type if spec else None,
            "ort_b1": _stats(_time_calls(lambda: d1.run(["probs"], {"window": x1}), args.runs)),
            "ort_batched_wps": _throughput(lambda: db.run(["probs"], {"window": xb}), args.batch)}
    else:
        results["deployed"] = None
        print("no deployed ONNX found; timed the exported comparison model only")

    results["targets"] = {"b1_p50_ms_le_0.1": results["ort_b1"]["p50_ms"] <= 0.1,
                          "speedup_ge_5x": results["speedup_b1_p50"] >= 5,
                          "batched_ge_50k_wps": results["ort_batched_wps"] >= 50_000}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"\nmodel: {name} ({source}); {os.cpu_count()} CPUs")
    print(f"{'runtime':<22}{'b1 p50 ms':>11}{'b1 p99 ms':>11}{f'b{args.batch} win/s':>14}")
    te, ob = results["torch_eager_b1"], results["ort_b1"]
    print(f"{'torch eager':<22}{te['p50_ms']:>11.4f}{te['p99_ms']:>11.4f}"
          f"{results['torch_eager_batched_wps']:>14,.0f}")
    print(f"{'onnxruntime':<22}{ob['p50_ms']:>11.4f}{ob['p99_ms']:>11.4f}{results['ort_batched_wps']:>14,.0f}")
    if results["deployed"]:
        d = results["deployed"]
        print(f"{'onnxruntime deployed':<22}{d['ort_b1']['p50_ms']:>11.4f}{d['ort_b1']['p99_ms']:>11.4f}"
              f"{d['ort_batched_wps']:>14,.0f}")
    print(f"speed-up b1 p50: {results['speedup_b1_p50']:.1f}x, batched: {results['speedup_batched']:.1f}x")
    print(f"targets: {results['targets']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
