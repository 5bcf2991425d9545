"""Sliding windows over sessions, vectorised with stride tricks (no Python loop per window)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from har.contracts import BODY_ACC, GRAVITY_ACC
from har.errors import DataError
from har.io import atomic_path
from har.preprocess.signal import gravity_body_split, resample

__all__ = ["Windows", "gravity_body_split", "load_windows", "make_windows", "resample",
           "save_windows", "sliding_windows"]

_KEYS = ("X", "y", "subject", "session", "start_s", "channels", "rate_hz")


@dataclass
class Windows:
    X: np.ndarray  # (n, win_len, n_channels) float32, physical units
    y: np.ndarray  # (n,) int64 class index
    subject: np.ndarray  # (n,) int
    session: np.ndarray  # (n,) str
    start_s: np.ndarray  # (n,) float, window start within its session
    channels: list[str]
    rate_hz: float


def sliding_windows(x: np.ndarray, win: int, step: int) -> np.ndarray:
    """(T, C) → (n, win, C) views; n = (T - win) // step + 1."""
    if len(x) < win:
        return np.empty((0, win, *x.shape[1:]), x.dtype)
    v = sliding_window_view(x, win, axis=0)[::step]  # (n, C, win)
    return np.moveaxis(v, -1, 1)


def _labels_resampled(labels: np.ndarray, n_out: int) -> np.ndarray:
    idx = np.minimum((np.arange(n_out) * len(labels) / max(n_out, 1)).astype(int), len(labels) - 1)
    return labels[idx]


def _arrow(col: pd.Series) -> pa.Array:
    arr = pa.array(col)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def make_windows(recordings: pd.DataFrame, rate_hz: float, target_rate_hz: float, window_s: float,
                 overlap: float, label_policy: Literal["majority", "drop_mixed"],
                 min_purity: float, classes: list[str], channels: list[str],
                 gravity_split: bool = False, gravity_cutoff_hz: float = 0.3) -> Windows:
    """Cut every (subject, session) into windows of ``window_s`` at ``target_rate_hz``.

    Per session (never per window): optional resampling (labels follow by nearest sample),
    optional gravity split, stride-view windowing, then the label policy:

    * ``majority``: the most frequent class in the window must cover ≥ ``min_purity`` of
      *all* its samples (unlabelled samples count as "no label" and never as a class),
      else the window is dropped.
    * ``drop_mixed``: keep only windows whose samples all carry one and the same label.

    ``gravity_split`` appends ``body_acc_x/y/z`` then ``grav_acc_x/y/z`` after ``channels``
    (``channels[:3]`` must be the accelerometer), from a zero-phase Butterworth low-pass at
    ``gravity_cutoff_hz`` computed over the whole session before windowing.
    """
    if label_policy not in ("majority", "drop_mixed"):
        raise ValueError(f"label_policy must be 'majority' or 'drop_mixed', got {label_policy!r}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    win = int(round(window_s * target_rate_hz))
    if win < 1:
        raise ValueError(f"window_s={window_s} at {target_rate_hz} Hz gives an empty window")
    step = max(1, int(round(win * (1 - overlap))))
    missing = [c for c in ["subject", "session", "sample", "label", *channels]
               if c not in recordings.columns]
    if missing:
        raise DataError(f"recordings: missing columns {missing}")
    cls_index = {c: i for i, c in enumerate(classes)}
    unknown = set(recordings["label"].dropna().unique()) - set(cls_index)
    if unknown:
        raise DataError(f"recordings: labels {sorted(unknown)} not in preprocess.classes")
    n_cls = len(classes)
    out_channels = list(channels)
    if gravity_split:
        out_channels += [*BODY_ACC, *GRAVITY_ACC]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("X", "y", "subject", "session", "start")}
    # Whole-table numpy conversions once; sessions are contiguous row ranges after one sort.
    recordings = recordings.sort_values(["subject", "session", "sample"], kind="stable")
    values = recordings[channels].to_numpy(np.float32)
    # Arrow kernels encode the string columns in C++: ~10x faster than pandas Categorical.
    codes = np.asarray(pc.fill_null(pc.index_in(_arrow(recordings["label"]),
                                                value_set=pa.array(classes)), -1), np.int64)
    subj = recordings["subject"].to_numpy()
    sess_enc = _arrow(recordings["session"]).dictionary_encode()
    sess_codes = sess_enc.indices.to_numpy()
    sess_names = sess_enc.dictionary.to_pylist()
    change = np.flatnonzero((subj[1:] != subj[:-1]) | (sess_codes[1:] != sess_codes[:-1])) + 1
    bounds = np.concatenate([[0], change, [len(recordings)]])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        subject, session = subj[lo], sess_names[sess_codes[lo]]
        x = values[lo:hi]
        lab = codes[lo:hi]
        if abs(rate_hz - target_rate_hz) > 1e-9:
            try:
                x = resample(x.astype(np.float64), rate_hz, target_rate_hz).astype(np.float32)
            except ValueError as err:  # an absurd rate in the recordings' metadata
                raise DataError(f"recordings: {err}") from None
            lab = _labels_resampled(lab, len(x))
        if gravity_split:
            grav, body = gravity_body_split(x[:, :3].astype(np.float64), target_rate_hz,
                                            gravity_cutoff_hz)
            x = np.concatenate([x, body, grav], axis=1).astype(np.float32)
        xw = sliding_windows(x, win, step)
        if not len(xw):
            continue
        # Labelled-sample counts per window and class through a cumulative sum: O(T * classes).
        onehot = np.zeros((len(lab) + 1, n_cls), np.int32)
        valid = lab >= 0
        onehot[1:][valid, lab[valid]] = 1
        csum = np.cumsum(onehot, axis=0)
        starts = np.arange(len(xw)) * step
        counts = csum[starts + win] - csum[starts]
        best = counts.argmax(axis=1)
        purity = counts.max(axis=1) / win
        keep = purity >= (1.0 if label_policy == "drop_mixed" else min_purity)
        parts["X"].append(xw[keep])
        parts["y"].append(best[keep])
        parts["subject"].append(np.full(keep.sum(), subject, np.int64))
        parts["session"].append(np.full(keep.sum(), str(session)))
        parts["start"].append(starts[keep] / target_rate_hz)
    if not parts["X"]:
        raise DataError(f"recordings: no session is longer than one window ({window_s} s)")
    return Windows(
        X=np.ascontiguousarray(np.concatenate(parts["X"])), y=np.concatenate(parts["y"]),
        subject=np.concatenate(parts["subject"]), session=np.concatenate(parts["session"]),
        start_s=np.concatenate(parts["start"]), channels=out_channels, rate_hz=target_rate_hz,
    )


def save_windows(w: Windows, path: Path) -> None:
    """Write ``w`` as npz through a temp file in the same folder and ``os.replace``."""
    # The .npz suffix stops np.savez from appending one to the temp name.
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, X=w.X, y=w.y, subject=w.subject, session=w.session.astype(str),
                 start_s=w.start_s, channels=np.array(w.channels), rate_hz=np.array(w.rate_hz))


def load_windows(path: Path) -> Windows:
    """Read a windows npz; DataError naming ``path`` if keys are missing or shapes disagree."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: windows file not found (run `har preprocess`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}")
            w = Windows(X=z["X"], y=z["y"], subject=z["subject"], session=z["session"],
                        start_s=z["start_s"], channels=[str(c) for c in z["channels"]],
                        rate_hz=float(z["rate_hz"]))
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable windows npz: {err}") from None
    if w.X.ndim != 3 or w.X.shape[2] != len(w.channels):
        raise DataError(f"{path}: X has shape {w.X.shape}, expected (n, win, {len(w.channels)})")
    lengths = {k: len(getattr(w, k)) for k in ("X", "y", "subject", "session", "start_s")}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{path}: inconsistent array lengths {lengths}")
    return w
