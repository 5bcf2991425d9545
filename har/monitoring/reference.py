"""Reference statistics of the training inputs, the baseline the drift monitor compares against.

Per channel, every window is summarised by its mean and its standard deviation (the same two
numbers the serving inference log records per window). For each such feature the reference keeps

* quantile bin edges and the reference proportion in each bin (for PSI), and
* a seeded random sample of at most ``sample_size`` values (for the two-sample KS test).

Only windows of *training* subjects are used: validation and test subjects stay unseen.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from har.contracts import SPLITS_FILE, WINDOWS_FILE
from har.errors import DataError
from har.io import atomic_path

FORMAT_VERSION = 1
N_BINS = 10
SAMPLE_SIZE = 5000


def window_features(X: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """(n, win, C) windows → one row per window with ``<ch>_mean`` and ``<ch>_std`` columns."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[2] != len(channels):
        raise ValueError(f"windows of shape {X.shape} do not match {len(channels)} channels")
    mean = X.mean(axis=1, dtype=np.float64)
    std = X.std(axis=1, dtype=np.float64)
    cols: dict[str, np.ndarray] = {}
    for i, ch in enumerate(channels):
        cols[f"{ch}_mean"] = mean[:, i]
        cols[f"{ch}_std"] = std[:, i]
    return pd.DataFrame(cols)


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in the bins (-inf, e0], (e0, e1], …, (e_last, inf)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def feature_reference(values: np.ndarray, n_bins: int = N_BINS, sample_size: int = SAMPLE_SIZE,
                      seed: int = 0) -> dict[str, Any]:
    """Quantile edges, bin proportions and a KS sample for one feature."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        raise DataError("reference feature has no finite values")
    # Interior quantile cut points; ties (a near-constant feature) collapse into fewer bins.
    edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
    rng = np.random.default_rng(seed)
    sample = rng.choice(v, size=sample_size, replace=False) if len(v) > sample_size else v
    return {
        "edges": edges.tolist(),
        "proportions": bin_proportions(v, edges).tolist(),
        "sample": np.sort(sample).tolist(),
        "n": int(len(v)),
        "mean": float(v.mean()),
        "std": float(v.std()),
    }


def build_reference(features: pd.DataFrame, n_bins: int = N_BINS, sample_size: int = SAMPLE_SIZE,
                    seed: int = 0, source: str = "") -> dict[str, Any]:
    """A JSON-ready reference for every ``<ch>_mean`` / ``<ch>_std`` column of ``features``."""
    cols = [c for c in features.columns if c.endswith(("_mean", "_std"))]
    if not cols or not len(features):
        raise DataError("no window features to build a reference from")
    return {
        "format": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(),
        "source": source,
        "n_windows": int(len(features)),
        "n_bins": n_bins,
        "features": {c: feature_reference(features[c].to_numpy(), n_bins, sample_size, seed + i)
                     for i, c in enumerate(cols)},
    }


def reference_from_processed(out_dir: Path, n_bins: int = N_BINS, sample_size: int = SAMPLE_SIZE,
                             seed: int = 0) -> dict[str, Any]:
    """Reference from ``out_dir/windows.npz``, restricted to the train subjects of splits.json."""
    from har.preprocess.windows import load_windows

    w = load_windows(out_dir / WINDOWS_FILE)
    splits_path = out_dir / SPLITS_FILE
    if not splits_path.is_file():
        raise DataError(f"{splits_path}: not found (run `har preprocess`)")
    train = json.loads(splits_path.read_text())["train"]
    mask = np.isin(w.subject, train)
    if not mask.any():
        raise DataError(f"{out_dir}: no windows of the train subjects {train}")
    ref = build_reference(window_features(w.X[mask], w.channels), n_bins, sample_size, seed,
                          source=str(out_dir / WINDOWS_FILE))
    ref["train_subjects"] = sorted(int(s) for s in train)
    return ref


def write_reference(ref: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(ref))
    return path


def load_reference(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: drift reference not found (run the training pipeline or "
                        "`har preprocess`, which write it)")
    try:
        ref = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(ref, dict) or "features" not in ref:
        raise DataError(f"{path}: not a drift reference (no 'features')")
    return ref
