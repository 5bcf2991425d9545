"""Compose docs/results.md from the JSON every benchmark script writes to benchmarks/results/.

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path("benchmarks/results")
PARETO = "docs/images/pareto.png"
CURVES = "docs/images/curves.png"
PUBLISHED = {"CNN-HAR": 0.848, "DANA": 0.836, "TinyHAR": 0.810, "DeepConvLSTM": 0.773, "random forest": 0.671}


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _f1(r: dict[str, Any], col: str) -> str:
    if f"{col}_mean" not in r:
        return "—"
    seeds = f"; seeds ± {r[f'{col}_seed_std']:.3f}" if len(r.get("seeds", [])) > 1 else ""
    return f"{r[f'{col}_mean']:.3f} ± {r[f'{col}_std']:.3f}{seeds}"


def _quality(q: dict[str, Any]) -> list[str]:
    cost = q.get("cost", {})
    lines = ["## Recognition quality (`benchmarks/quality.py`)", "",
             f"Measured {q['time']} on this project's CPU machine (2 cores). Every figure is by subject: "
             "no subject's windows are in both training and test.", "",
             "### HAPT, 10-fold subject protocol (WHAR Arena): 12 classes, 3 s windows, 50 % overlap", "",
             "**Windows** is the published protocol: each test window classified on its own. **With "
             "context** decodes each test recording's windows in time order with the context HMM the "
             "API's timeline uses (persistence and the grammar of postural transitions, "
             f"`serve.hmm_switch_prob` {q.get('context', {}).get('switch_prob', '?')}; no test label is "
             "used). **Counted transitions** replaces the grammar with transition probabilities counted "
             "on the training labels, for comparison only: on HAPT they learn the data collection's "
             "scripted order of activities. Mean ± std over the 10 folds; with several seeds, also the "
             "std of the per-seed means.", "",
             "| model | macro-F1, windows | with context | counted transitions | parameters | "
             "multiply-adds / window | CPU s / fold | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in q["cv"]:
        c = cost.get(r["model"].split(" (")[0], {})  # a variant costs what its model does…
        same_net = r.get("n_params", c.get("params")) == c.get("params")  # …unless its input changed
        macs = f"{c['macs']:,}" if "macs" in c and same_net else "—"
        params = f"{r['n_params']:,}" if "n_params" in r else (f"{c['params']:,}" if "params" in c else "—")
        secs = f"{r['train_seconds_per_fold']:.0f}" if "train_seconds_per_fold" in r else "—"
        lines.append(f"| {r['model']} | **{_f1(r, 'macro_f1')}** | **{_f1(r, 'macro_f1_context')}** | "
                     f"{_f1(r, 'macro_f1_learned')} | {params} | {macs} | {secs} | "
                     f"{len(r.get('seeds', [])) or 1} |")
    lines += _budget(q)
    lines += ["", "Published on the same protocol (WHAR Arena, HAPT macro-F1, windows): "
              + ", ".join(f"{k} {v:.3f}" for k, v in PUBLISHED.items()) + ".",
              "For `classic` the parameter count is the number of tree nodes and the multiply-adds are its "
              "feature extractor's. Epochs are a ceiling: early stopping on validation subjects (drawn "
              "from each fold's training subjects) may end sooner, never before `train.min_epochs`.", ""]
    # variants get their own table (paired against their model below)
    per_class = [r for r in q["cv"] if "per_class_f1" in r and "per_class_f1_context" in r
                 and " (" not in r["model"]]
    if per_class:
        names = list(per_class[0]["per_class_f1"])
        lines += ["Per-class F1 (mean over folds and seeds), windows → with context:", "",
                  "| class | " + " | ".join(r["model"] for r in per_class) + " |",
                  "|---|" + "---|" * len(per_class)]
        for c in names:
            cells = [f"{r['per_class_f1'][c]:.2f} → {r['per_class_f1_context'][c]:.2f}" for r in per_class]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _variants(_fold_rows())
    if Path(PARETO).is_file():
        lines += [f"![macro-F1 against cost]({Path(PARETO).relative_to('docs')})", ""]
    if q.get("official"):
        lines += ["### Official HAPT split (test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24), 2.56 s windows",
                  "",
                  "| model | test macro-F1 | with context | test accuracy | val macro-F1 | parameters | "
                  "CPU s | epochs |", "|---|---|---|---|---|---|---|---|"]
        for name, r in sorted(q["official"].items(), key=lambda kv: -kv[1]["macro_f1"]):
            ctx = f"{r['macro_f1_context']:.3f}" if "macro_f1_context" in r else "—"
            lines.append(f"| {name} | {r['macro_f1']:.3f} | {ctx} | {r['accuracy']:.3f} | "
                         f"{r['val_macro_f1']:.3f} | {r['n_params']:,} | {r['train_seconds']:.0f} | "
                         f"{r['epochs_run']} |")
        lines.append("")
    return lines


# the watch budget of the quality goal: parameters and multiply-adds per 3 s window
BUDGET = {"params": 30_000, "macs": 500_000, "macro_f1": 0.87}


def _budget(q: dict[str, Any]) -> list[str]:
    """The best model within BUDGET (never a variant or an ensemble: their cost is not one model's)."""
    cost = q.get("cost", {})
    fits = [r for r in q["cv"] if r["model"] in cost
            and cost[r["model"]].get("params", 1e18) <= BUDGET["params"]
            and cost[r["model"]].get("macs", 1e18) <= BUDGET["macs"]]
    if not fits:
        return []
    best = max(fits, key=lambda r: r.get("macro_f1_context_mean", r["macro_f1_mean"]))
    c = cost[best["model"]]

    def verdict(f1: float) -> str:
        return "meets" if f1 >= BUDGET["macro_f1"] else "misses"

    ctx = best.get("macro_f1_context_mean")
    return ["", f"**Within the watch budget** (≤ {BUDGET['params']:,} parameters, ≤ {BUDGET['macs']:,} "
            f"multiply-adds per window): `{best['model']}`, {c['params']:,} parameters and {c['macs']:,} "
            f"multiply-adds, {best['macro_f1_mean']:.3f} with windows one by one "
            f"({verdict(best['macro_f1_mean'])} the {BUDGET['macro_f1']} goal)"
            + (f" and {ctx:.3f} with context ({verdict(ctx)} it)" if ctx is not None else "")
            + f", over {len(best.get('seeds', [])) or 1} seeds."]


def _fold_rows() -> list[dict[str, Any]]:
    """quality_folds.jsonl, the last row of each (model, seed, fold) (a re-run replaces its row)."""
    path = RESULTS / "quality_folds.jsonl"
    if not path.is_file():
        return []
    rows: dict[tuple[str, int | None, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows[(r["model"], r.get("seed"), r["fold"])] = r
    return list(rows.values())


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _variants(rows: list[dict[str, Any]]) -> list[str]:
    """Each ``model (variant)`` against its model on the same (seed, fold): paired differences."""
    by_key = {(r["model"], r.get("seed"), r["fold"]): r for r in rows}
    variants = sorted({r["model"] for r in rows if " (" in r["model"]})
    if not variants:
        return []
    lines = ["Variants (`quality.py --set … --tag …`), each paired with its model on the same seeds and "
             "folds: the change in macro-F1, in how many folds it helped, and in the mean F1 of the six "
             "postural transitions and of sitting/standing (windows).", "",
             "| variant | folds | Δ macro-F1, windows | folds better | Δ with context | Δ transitions F1 | "
             "Δ sitting/standing F1 |", "|---|---|---|---|---|---|---|"]
    for name in variants:
        base = name.split(" (")[0]
        pairs = [(r, by_key[(base, r.get("seed"), r["fold"])]) for r in rows
                 if r["model"] == name and (base, r.get("seed"), r["fold"]) in by_key
                 and "macro_f1_context" in by_key[(base, r.get("seed"), r["fold"])]]
        if not pairs:
            continue
        d = [v["macro_f1"] - b["macro_f1"] for v, b in pairs]
        dc = [v["macro_f1_context"] - b["macro_f1_context"] for v, b in pairs]
        classes = list(pairs[0][0]["per_class_f1"])
        transitions = [c for c in classes if "_TO_" in c]
        still = [c for c in classes if c in ("SITTING", "STANDING")]

        def delta(group: list[str], pairs: list[tuple[dict[str, Any], dict[str, Any]]] = pairs) -> str:
            if not group:
                return "—"
            diffs = [v["per_class_f1"][c] - b["per_class_f1"][c] for v, b in pairs for c in group]
            return f"{_mean(diffs):+.3f}"

        lines.append(f"| {name} | {len(pairs)} | {_mean(d):+.3f} | {sum(x > 0 for x in d)} of {len(d)} | "
                     f"{_mean(dc):+.3f} | {delta(transitions)} | {delta(still)} |")
    return [*lines, ""]


def _curves() -> list[str]:
    """benchmarks/curve.py: one fold's learning curves, as a table and docs/images/curves.png."""
    path = RESULTS / "curves.jsonl"
    if not path.is_file():
        return []
    curves = [json.loads(line) for line in path.read_text().splitlines()]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(11, 4))
    lines = ["## Learning curves (`benchmarks/curve.py`)", "",
             "One fold of the 10-fold protocol, every epoch run (no early stop): is a model still learning "
             "when the quality run stops it?", "",
             "| model | settings | fold | epochs | best validation macro-F1 (epoch) | final training loss | "
             "test macro-F1 |", "|---|---|---|---|---|---|---|"]
    for c in curves:
        h = c["history"]
        best = max(h, key=lambda e: e["val_macro_f1"])
        label = f"{c['model']}: {c['tag']}"
        lines.append(f"| {c['model']} | {c['tag']} | {c['fold']} | {c['epochs']} | "
                     f"{best['val_macro_f1']:.3f} ({best['epoch']}) | {h[-1]['train_loss']:.3f} | "
                     f"{c['test_macro_f1']:.3f} |")
        ax_loss.plot([e["epoch"] for e in h], [e["train_loss"] for e in h], label=label)
        ax_f1.plot([e["epoch"] for e in h], [e["val_macro_f1"] for e in h], label=label)
    for ax, name in ((ax_loss, "training loss"), (ax_f1, "validation macro-F1")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_f1.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(CURVES)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [*lines, "", f"![learning curves]({out.relative_to('docs')})", ""]


def pareto(q: dict[str, Any], lat: dict[str, Any] | None) -> Path | None:
    """docs/images/pareto.png: 10-fold macro-F1 (windows, and with context) against multiply-adds per
    window and, where measured, ONNX Runtime batch-1 latency. The front is the models no other
    beats on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = q.get("cost", {})
    rows = [r for r in q.get("cv", []) if r["model"] in cost]
    if not rows:
        return None
    times = (lat or {}).get("models", {})
    panels = [("macs", "multiply-adds per window (log)")]
    if times:
        panels.append(("latency", "ONNX Runtime batch-1 p50, ms (log)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (kind, label) in zip(axes[0], panels, strict=True):
        for col, marker, name in (("macro_f1_mean", "o", "windows"),
                                  ("macro_f1_context_mean", "s", "with context")):
            pts = []
            for r in rows:
                x = (cost[r["model"]]["macs"] if kind == "macs"
                     else times.get(r["model"], {}).get("ort_b1_p50_ms"))
                if x is not None and col in r:
                    pts.append((x, r[col], r["model"]))
            if not pts:
                continue
            pts.sort()
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=name, zorder=3)
            front, best = [], -1.0
            for x, y, _ in pts:  # cheapest first: a point is on the front if nothing cheaper beats it
                if y > best:
                    front.append((x, y))
                    best = y
            ax.step([f[0] for f in front], [f[1] for f in front], where="post", alpha=0.5)
            for x, y, n in pts:
                ax.annotate(n, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for name, f1 in PUBLISHED.items():
            ax.axhline(f1, color="grey", lw=0.6, ls=":")
            ax.text(0.01, f1, name, transform=ax.get_yaxis_transform(), fontsize=7, color="grey", va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("10-fold macro-F1")
        ax.grid(alpha=0.3)
        ax.legend(loc="center right", fontsize=8)
    fig.suptitle("HAPT, 10-fold subject protocol: quality against cost (dotted: published, windows)",
                 fontsize=10)
    fig.tight_layout()
    out = Path(PARETO)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _latency(lat: dict[str, Any]) -> list[str]:
    t, o = lat["torch_eager_b1"], lat["ort_b1"]
    t_wps = lat["torch_eager_batched_wps"]
    return ["## Inference latency (`benchmarks/latency.py`)", "",
            f"Model: {lat.get('model')} from {lat.get('source', '?')}; "
            f"torch: {lat.get('torch_source', '?')}; "
            f"window {lat.get('window')}, "
            f"load average at start {lat.get('machine', {}).get('loadavg_1m_at_start', 0):.1f}.", "",
            "| runtime | batch-1 p50 ms | batch-1 p99 ms | batch-256 windows/s |", "|---|---|---|---|",
            f"| ONNX Runtime | {o['p50_ms']:.3f} | {o['p99_ms']:.3f} | {lat['ort_batched_wps']:,.0f} |",
            f"| torch eager | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {t_wps:,.0f} |",
            "", f"Speed-up: {lat['speedup_b1_p50']:.1f}× at batch 1, {lat['speedup_batched']:.1f}× batched. "
            "Targets: batch-1 p50 ≤ 0.1 ms, ≥ 5× torch eager, ≥ 50k windows/s batched.", "",
            *_latency_models(lat.get("models", {}))]


def _latency_models(models: dict[str, dict[str, float]]) -> list[str]:
    """`latency.py --compare`: each architecture (untrained, 3 s windows) fp32 and int8."""
    if not models:
        return []
    lines = ["Architectures compared (`latency.py --compare`, untrained networks at the protocol's 3 s "
             "windows, 150 × 6; latency does not depend on the weights):", "",
             "| model | ORT batch-1 p50 ms | torch eager batch-1 p50 ms | speed-up | ORT windows/s batched | "
             "ONNX bytes |", "|---|---|---|---|---|---|"]
    for name, m in sorted(models.items(), key=lambda kv: kv[1]["ort_b1_p50_ms"]):
        lines.append(f"| {name} | {m['ort_b1_p50_ms']:.3f} | {m['torch_b1_p50_ms']:.3f} | "
                     f"{m['speedup_b1_p50']:.1f}× | {m['ort_batched_wps']:,.0f} | {m['onnx_bytes']:,} |")
    return [*lines, "", "Targets for the small model on 2 cores: batch-1 p50 ≤ 0.05 ms, ≥ 5× torch eager, "
            "≥ 50k windows/s batched.", ""]


def _serve(s: dict[str, Any]) -> list[str]:
    return ["## HTTP serving under load (`benchmarks/serve_load.py`)", "",
            "| requests | concurrency | req/s | p50 ms | p99 ms | errors | server CPU ms / request |",
            "|---|---|---|---|---|---|---|",
            f"| {s['requests']:,} | {s['concurrency']} | {s['req_per_s']:,.0f} | {s['p50_ms']:.1f} | "
            f"{s['p99_ms']:.1f} | {s['errors']} | {s.get('server_cpu_ms_per_request', 0):.2f} |", "",
            "Single-window requests over real HTTP on 127.0.0.1; the load client runs on the same 2 cores. "
            "Target: ≥ 1,000 req/s with p99 ≤ 20 ms.", ""]


def _orchestration(o: dict[str, Any]) -> list[str]:
    return ["## Orchestration overhead (`benchmarks/orchestration.py`)", "",
            "| stages called directly (s) | same stages as a Prefect flow (s) | overhead |", "|---|---|---|",
            f"| {o['direct_median_s']:.1f} | {o['flow_median_s']:.1f} | {o['overhead_pct']:+.1f} % |", "",
            f"Config: {json.dumps(o.get('config', {}))}; Prefect's ephemeral API start "
            f"({o.get('prefect_startup_s', 0):.0f} s) is not counted. Target ≤ 10 %.", ""]


def _stack(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    return ["## The deployed stack on one machine (`benchmarks/stack.py`)", "",
            "| measure | figure | target |", "|---|---|---|",
            f"| `har stack up` until all 6 services are healthy, empty state (initdb, migrations) | "
            f"{s['up_cold_s']:.1f} s | — |",
            f"| … after `har stack down` (state kept) | {s['up_warm_s']:.1f} s | — |",
            f"| one retraining cycle through the worker (run created → completed), median of "
            f"{c['repeats']} | {s['worker_median_s']:.1f} s | — |",
            f"| the same cycle in-process (`har pipeline run --no-cache --promote`) | "
            f"{s['inprocess_median_s']:.1f} s | — |",
            f"| worker overhead | {s['worker_overhead_pct']:+.1f} % | "
            f"≤ {s['worker_overhead_target_pct']:.0f} % |",
            f"| API req/s, champion from the MLflow server / from its ONNX file | "
            f"{s['api_rps_registry']:,.0f} / {s['api_rps_file']:,.0f} ({s['api_rps_diff_pct']:+.1f} %) | "
            f"within {s['api_rps_target_pct']:.0f} % |", "",
            f"Cycle: {c['model']}, {c['epochs']} epochs, subjects {c['subjects']}, caching off, policy gate; "
            f"the worker polls every 2 s. HTTP: {c['load_duration_s']:.0f} s at {c['load_concurrency']} "
            f"connections per side, p99 {s['api_p99_ms_registry']:.1f} / {s['api_p99_ms_file']:.1f} ms, "
            f"{s['api_errors']} errors. Measured {s['time']} while other jobs shared the 2 cores.", ""]


def _continuous(c: dict[str, Any]) -> list[str]:
    lines = ["## Continuous recognition on whole recordings (`benchmarks/continuous.py`)", "",
             f"The {c['model']} champion's timelines (`/v1/predict/recording`: resample, window, smooth, "
             f"merge) scored on every labelled sample of the official test subjects; the smoothing is "
             f"chosen on the validation subjects {c['val_subjects']} only.", "",
             "| smoothing | validation sample macro-F1 | test sample macro-F1 | test sample accuracy |",
             "|---|---|---|---|"]
    for v, t in zip(c["validation"], c["test"], strict=True):
        mark = " (chosen)" if v["smoothing"] == c["chosen"] else ""
        lines.append(f"| {v['smoothing']}{mark} | {v['macro_f1']:.3f} | {t['macro_f1']:.3f} | "
                     f"{t['accuracy']:.3f} |")
    ch = c["chosen_test"]
    lines += ["", "Window-level test macro-F1 of the same model (`har evaluate`): "
              f"{c['window_macro_f1']:.3f}; sample-level with the chosen smoothing: {ch['macro_f1']:.3f} "
              f"(accuracy {ch['accuracy']:.3f}). "
              "Target: sample-level ≥ window-level. Majority votes longer than 3 windows erase the "
              "postural transitions (3-4 s); the HMM keeps them, so `serve.smoothing` defaults to `hmm`.", ""]
    return lines


def _scale(sc: dict[str, Any]) -> list[str]:
    """Each section of benchmarks/scale.py that has been measured."""
    lines = ["## Scale-out (`benchmarks/scale.py`)", "",
             "| measure | one process | scaled out | speed-up | target |", "|---|---|---|---|---|"]
    for key in ("cv", "cv_deep"):
        if cv := sc.get(key):
            what = f"10-fold CV of `{cv['model']}`" + (f", {cv['epochs']} epochs" if cv.get("epochs") else "")
            one, many, dask = cv["serial_1thread"], cv["serial"], cv["dask"]
            lines += [f"| {what} (s): folds in turn on 1 thread / Prefect flow on {cv['workers']} Dask "
                      f"workers of 1 thread (cluster start included) | {one['seconds']:.0f} | "
                      f"{dask['seconds']:.0f} | {cv['speedup_vs_1thread']:.2f}× | ≥ 1.6× |",
                      f"| … folds in turn on {many['threads']} threads / the same flow | "
                      f"{many['seconds']:.0f} | {dask['seconds']:.0f} | {cv['speedup']:.2f}× | — |"]
    if ddp := sc.get("ddp"):
        r = ddp["runs"]
        one, n = r["nproc1"], r[f"nproc{ddp['nproc']}"]
        lines.append(f"| `{ddp['model']}` epochs/s, global batch {ddp['global_batch']}: 1 process "
                     f"({one['threads']} threads) / `--nproc {ddp['nproc']}` | {one['epochs_per_s']:.3f} | "
                     f"{n['epochs_per_s']:.3f} | {ddp['speedup']:.2f}× | — |")
        if "nproc1_1thread" in r:
            lines.append(f"| … 1 process on 1 thread / `--nproc {ddp['nproc']}` | "
                         f"{r['nproc1_1thread']['epochs_per_s']:.3f} | {n['epochs_per_s']:.3f} | "
                         f"{ddp['speedup_vs_1thread']:.2f}× | — |")
    if pr := sc.get("precision"):
        lines.append(f"| `{pr['model']}` epochs/s, fp32 / bf16 autocast ({pr['threads']} thread(s), CPU) | "
                     f"{pr['fp32']['epochs_per_s']:.3f} | {pr['bf16']['epochs_per_s']:.3f} | "
                     f"{pr['bf16_speedup']:.2f}× | — |")
    if tu := sc.get("tune"):
        lines.append(f"| tuning throughput, trials/hour ({tu['model']}, {tu['epochs_per_trial']} epochs, "
                     f"{tu['workers']} Dask workers): no pruning / median pruner | "
                     f"{tu['none']['trials_per_hour']:.0f} | {tu['median']['trials_per_hour']:.0f} | "
                     f"{tu['pruning_speedup']:.2f}× | — |")
    lines.append("")
    if pr := sc.get("precision"):
        lines += [f"bf16 against fp32 ({pr['epochs']} epochs, same seed): validation macro-F1 "
                  f"{pr['fp32']['val_macro_f1']:.3f} → {pr['bf16']['val_macro_f1']:.3f}, test macro-F1 "
                  f"{pr['fp32']['test_macro_f1']:.3f} → {pr['bf16']['test_macro_f1']:.3f}.", ""]
    for key in ("cv", "cv_deep"):
        if cv := sc.get(key):
            lines += [f"`{cv['model']}`: the Dask table equals the one-thread serial table fold by fold: "
                      f"{cv['folds_equal']} (mean macro-F1 {cv['macro_f1_mean']:.3f}).", ""]
    if tu := sc.get("tune"):
        lines += [f"Tuning: best validation macro-F1 {tu['none']['best_val_macro_f1']:.3f} without pruning, "
                  f"{tu['median']['best_val_macro_f1']:.3f} with it; trials {tu['none']['trials']} / "
                  f"{tu['median']['trials']}.", ""]
    measured = sorted({v.get("measured", "") for v in sc.values() if isinstance(v, dict)} - {""})
    lines += [f"Measured {', '.join(measured)} on {_machine_line(sc)}. A bigger machine or a cluster changes "
              "the numbers, not the commands: one Dask worker per core (or `pipeline.dask_address`) for "
              "folds and trials, `--nproc` with one GPU per process (NCCL) for epochs, and tuning "
              "processes on several machines sharing one PostgreSQL-backed study.", ""]
    return lines


def _machine_line(sc: dict[str, Any]) -> str:
    for v in sc.values():
        if isinstance(v, dict) and "machine" in v:
            m = v["machine"]
            return f"{m['cpus']} CPUs ({m['cpu']}), torch {m['torch']}, {m['gpus']} GPUs"
    return "this machine"


def _preprocess(pp: dict[str, Any]) -> list[str]:
    return ["## Preprocessing (`benchmarks/preprocess.py`)", "",
            f"{pp['samples']:,} HAPT samples → {pp['windows']:,} windows in {pp['seconds']:.2f} s "
            f"({pp['samples_per_s'] / 1e6:.1f} M samples/s, {pp['peak_mem_mb']:.0f} MB peak); "
            f"{pp['speedup']:.0f}× a pandas per-window loop in the same run.", ""]


NOTES = """## Reading these figures

- **The 0.87 goal.** Windows one by one, the watch-sized `sepcnn` (19 k parameters, 0.45 M
  multiply-adds) is level with cnn1d and under the goal; what stands in the way is the six postural
  transitions (3-4 s events, F1 0.6-0.8 alone) and sitting against standing. Decoded in context —
  the grammar HMM the API's timeline runs, which costs a 12×12 Viterbi step per window — the same
  model reaches 0.92, and every model gains 0.05-0.09, nearly all of it on the transitions. The
  best windows-only figure is the `classic+sepcnn` ensemble (mean of probabilities), over 0.87; its
  boosted trees are not watch-sized. Seeds move `sepcnn` by about ±0.01 (windows) and ±0.02 (context).
- **Counted transitions** (probabilities counted on training labels) score close to the grammar
  but learn HAPT's scripted order of activities, which a user's day does not follow; the served
  timeline uses the grammar.
- **Negative and mixed results, kept out of the defaults** (the variants table, paired per fold).
  What helps a window on its own is what context already gives: no rotation augmentation (+0.021,
  8 of 10 folds), gravity/body channels (+0.015) and label smoothing (+0.014) all raise the
  windows-only score, mostly on the transitions, and all lower the score in context (-0.012 to
  -0.079; smoothing flattens the probabilities, so persistence overrules the real transitions).
  Mixup 0.2 changes nothing beyond noise. No rotation and gravity/body channels together come
  closest on windows alone (0.867, one seed; +0.028 paired, 7 of 10 folds; -0.005 in context). They
  stay out of the defaults: the API receives raw sensor channels and does not derive the
  gravity/body split a model trained on it would expect. The first label-smoothing row used torch's
  `label_smoothing` with class weights, which weights the uniform part per class and pulled every
  window toward the rare transitions (-0.076); `train.label_smoothing` now weights a window by its
  target class only. Rotation stays on because it is what keeps a model usable when the phone sits
  another way round. Not tried: stacking (it needs out-of-fold probabilities of the training
  subjects, a nested protocol) and test-time augmentation (time shifts of a window are what the
  context HMM already pools; rotations would blur the gravity direction that separates postures).
- **DeepConvLSTM's 0.378 is under-training, not a bug in the network.** Its table row had 8 epochs
  of the project's regularised recipe (dropout 0.5 in three places, rotation, one-cycle at lr
  0.002). The learning curves show the recipe, not the budget, holds it back: 30 epochs of it reach
  0.598 on fold 1 with the training loss still at 1.28, while the reference implementation's
  settings (WHAR Arena, teco-kit/whar-arena: AdamW lr 1e-3, no dropout, no augmentation) reach
  0.788 on the same fold (loss 0.18). Fold 1 is an easier fold than average (cnn1d 0.885 there, 0.833
  over 10 folds), so this points to about the published 0.773, not above it. The full 10-fold run
  costs about 15 CPU-minutes per fold:
  `benchmarks/quality.py --models deepconvlstm --set train.lr=0.001 train.deepconvlstm.dropout=0
  train.augment.rotation=false --tag reference-like`.
- **TinyHAR 0.784 against the published 0.810** is within one fold-std (±0.054). Differences from
  the reference (teco-kit/whar-models, ISWC22-HAR): ours is a 19 k-parameter version (the Arena's
  has 159 k: 32 filters, unpadded strided convolutions, a 2F fusion, a GRU and a flattened temporal
  readout), trained with rotation augmentation; the Arena validates on a random 20 % of the training
  windows (overlapping windows of the same subjects), we on held-out subjects.
- CPU seconds were measured while other jobs shared the 2 cores: treat them as upper bounds.
- Latency: `sepcnn` in int8 meets batch-1 p50 ≤ 0.05 ms and ≥ 5× torch eager, and comes within a few
  per cent of 50 k windows/s batched; cnn1d in int8 is as fast at batch 1 but its 3.3 M
  multiply-adds per 3 s window cap it lower batched. TinyHAR has fewer parameters but more
  operations per window (per-channel convolutions) and is slower, not faster.
- Serving: the load client shares the 2 cores with the server. At concurrency 4 both targets hold;
  at concurrency 16 the client starves the server (872 req/s, p99 117 ms on the same build).
- Orchestration: median of 3 alternating direct/flow pairs after an untimed warm-up pass.

"""


def render() -> str:
    lines = ["# Results", "", "Generated by `benchmarks/report.py` from `benchmarks/results/*.json`; "
             "each section names the script that measured it.", ""]
    quality = _load("quality.json")
    if quality is not None:
        pareto(quality, _load("latency.json"))
    for name, fn in (("quality.json", _quality), ("latency.json", _latency), ("serve_load.json", _serve),
                     ("orchestration.json", _orchestration), ("stack.json", _stack),
                     ("continuous.json", _continuous), ("scale.json", _scale),
                     ("preprocess.json", _preprocess)):
        data = _load(name)
        if data is not None:
            lines += fn(data)
        if name == "quality.json":
            lines += _curves()
    return "\n".join(lines) + "\n" + NOTES


def main() -> None:
    out = Path("docs/results.md")
    out.write_text(render())
    print(out.read_text())


if __name__ == "__main__":
    main()
