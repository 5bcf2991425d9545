"""Raw HAPT → windows: har's vectorised windowing against a straightforward pandas loop.

Usage: HAR_DATA_MIRROR=../shared/datasets python benchmarks/preprocess.py [--baseline-sessions N]
Both run in this process on the same recordings table; results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from har.config import load_params
from har.preprocess.pipeline import BASE_CHANNELS
from har.preprocess.windows import make_windows

HAPT_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING",
              "LAYING", "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT",
              "STAND_TO_LIE", "LIE_TO_STAND"]


def load_hapt(root: Path) -> pd.DataFrame:
    """All HAPT RawData as the recordings table; labels.txt start/end are 1-based inclusive."""
    raw = root / "RawData"
    labels = pd.read_csv(raw / "labels.txt", sep=r"\s+", header=None).to_numpy(np.int64)
    frames = []
    for acc_path in sorted(raw.glob("acc_exp*_user*.txt")):
        exp, user = int(acc_path.stem[7:9]), int(acc_path.stem[-2:])
        acc = pd.read_csv(acc_path, sep=" ", header=None).to_numpy(np.float32)
        gyro = pd.read_csv(acc_path.with_name(acc_path.name.replace("acc_", "gyro_")), sep=" ",
                           header=None).to_numpy(np.float32)
        n = len(acc)
        lab = np.full(n, None, dtype=object)
        for _, _, act, a, b in labels[(labels[:, 0] == exp) & (labels[:, 1] == user)]:
            lab[a - 1:b] = HAPT_NAMES[act - 1]
        frames.append(pd.DataFrame({
            "subject": np.full(n, user, np.int16), "session": f"exp{exp:02d}",
            "sample": np.arange(n, dtype=np.int32), "t": np.arange(n) / 50.0,
            **{c: np.hstack([acc, gyro])[:, i] for i, c in enumerate(BASE_CHANNELS)},
            "label": pd.array(lab, dtype="string")}))
    df = pd.concat(frames, ignore_index=True)
    df["session"] = df["session"].astype("string")
    return df


def pandas_baseline(df: pd.DataFrame, win: int, step: int, min_purity: float,
                    classes: list[str]) -> int:
    """The obvious implementation: per session, loop over windows, majority via value_counts."""
    kept = 0
    X, y = [], []
    for _, g in df.groupby(["subject", "session"]):
        for start in range(0, len(g) - win + 1, step):
            w = g.iloc[start:start + win]
            counts = w["label"].value_counts()
            if counts.empty or counts.iloc[0] / win < min_purity:
                continue
            X.append(w[BASE_CHANNELS].to_numpy(np.float32))
            y.append(classes.index(counts.index[0]))
            kept += 1
    return kept


def measure(fn, *args, repeat: int = 3):
    """Best wall time of `repeat` runs, then peak traced memory in one more (tracemalloc slows
    allocation-heavy code several-fold, so it never overlaps the timed runs)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, best, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-sessions", type=int, default=6,
                    help="sessions the slow pandas baseline runs on (rate is per sample)")
    args = ap.parse_args()
    p = load_params()
    pp = p.preprocess
    mirror = os.environ.get("HAR_DATA_MIRROR")
    if not mirror:
        raise SystemExit("set HAR_DATA_MIRROR to the folder holding hapt/RawData")
    df = load_hapt(Path(mirror) / "hapt")
    n = len(df)
    w, dt, peak = measure(make_windows, df, 50.0, pp.target_rate_hz, pp.window_s, pp.overlap,
                          pp.label_policy, pp.min_purity, pp.classes, BASE_CHANNELS)
    win = int(round(pp.window_s * pp.target_rate_hz))
    step = int(round(win * (1 - pp.overlap)))
    sessions = df["session"].drop_duplicates().iloc[: args.baseline_sessions]
    sub = df[df["session"].isin(sessions)]
    _, bdt, bpeak = measure(pandas_baseline, sub, win, step, pp.min_purity, pp.classes, repeat=1)
    ours_rate, base_rate = n / dt, len(sub) / bdt
    result = {
        "samples": n, "windows": int(len(w.X)), "seconds": round(dt, 3),
        "samples_per_s": round(ours_rate), "peak_mem_mb": round(peak / 2**20, 1),
        "baseline_samples": int(len(sub)), "baseline_seconds": round(bdt, 3),
        "baseline_samples_per_s": round(base_rate), "baseline_peak_mem_mb": round(bpeak / 2**20, 1),
        "speedup": round(ours_rate / base_rate, 1),
        "baseline_note": f"pandas loop on first {args.baseline_sessions} sessions; "
                         "per-sample rates compared (extrapolated)",
        "config": {"window_s": pp.window_s, "overlap": pp.overlap, "label_policy": pp.label_policy,
                   "min_purity": pp.min_purity, "target_rate_hz": pp.target_rate_hz},
        "targets": {"samples_per_s": 5_000_000, "speedup": 20},
    }
    print(f"{'':<18}{'samples':>12}{'seconds':>10}{'samples/s':>14}{'peak MB':>10}")
    print(f"{'har (numpy)':<18}{n:>12,}{dt:>10.2f}{ours_rate:>14,.0f}{peak / 2**20:>10.1f}")
    print(f"{'pandas loop':<18}{len(sub):>12,}{bdt:>10.2f}{base_rate:>14,.0f}{bpeak / 2**20:>10.1f}")
    print(f"speed-up: {result['speedup']}x  (windows: {len(w.X):,}); baseline ran on the first "
          f"{args.baseline_sessions} sessions, compared per sample")
    out = Path(__file__).parent / "results" / "preprocess.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
