"""A continuous recording → window predictions → smoothed activity segments.

Shared by the ``/v1/predict/recording`` endpoint and ``har predict`` so both cut, smooth and
merge identically. Geometry: the recording is resampled to the model rate with the project's
``resample`` (polyphase, anti-aliased), cut with ``sliding_windows`` at the model's window
length and step; window *i* starts at sample ``i * step``. Because windows overlap, each one is
credited with the central ``step`` samples around its middle; the first window also covers the
recording start and the last one runs to its own end, so segments tile
``[start, start + (last_start + window_len) / rate)`` without gaps or overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from har.serving.context import context_transitions, viterbi
from har.serving.model import LoadedModel, ModelSpec

# No pandas/scipy at import time: this module is in the API process, where a big heap of library
# objects makes every full garbage collection slower (docs/serving.md#tail-latency). The resampler
# (scipy) is imported on the first recording that needs it.


def sliding_windows(x: np.ndarray, win: int, step: int) -> np.ndarray:
    """(T, C) → (n, win, C) views, n = (T - win) // step + 1: the same geometry as
    ``har.preprocess.windows.sliding_windows`` (tests/serving/test_timeline.py checks they agree),
    without importing that module's pandas/pyarrow."""
    if len(x) < win:
        return np.empty((0, win, *x.shape[1:]), x.dtype)
    return np.moveaxis(sliding_window_view(x, win, axis=0)[::step], -1, 1)


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    activity: str
    confidence: float  # mean probability of `activity` over the segment's windows

    def as_dict(self) -> dict[str, float | str]:
        return {"start_s": self.start_s, "end_s": self.end_s, "activity": self.activity,
                "confidence": self.confidence}


@dataclass
class Timeline:
    windows: np.ndarray  # (n, window_len, C) at the model rate, model channel order
    probs: np.ndarray  # (n, K)
    raw_pred: np.ndarray  # (n,) argmax per window
    smoothed: np.ndarray  # (n,) after the majority filter
    window_start_s: np.ndarray  # (n,) absolute start time of each window
    segments: list[Segment]


def smooth_predictions(pred: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Majority vote over ``k`` consecutive windows centred on each one.

    Ties go to the class with the larger summed probability in the neighbourhood, so a
    two-window filter still has a defined answer. Vectorised with a cumulative sum over classes.
    """
    n, n_cls = probs.shape
    if k <= 1 or n == 0:
        return pred.copy()
    onehot = np.zeros((n + 1, n_cls), np.float64)
    onehot[np.arange(1, n + 1), pred] = 1.0
    # Probabilities break ties only: scaled below the smallest possible vote difference.
    score = np.cumsum(onehot, axis=0)
    psum = np.concatenate([np.zeros((1, n_cls)), np.cumsum(probs, axis=0, dtype=np.float64)])
    # At the ends the neighbourhood slides inward instead of shrinking, so every window gets k votes.
    lo = np.clip(np.arange(n) - k // 2, 0, max(n - k, 0))
    hi = np.minimum(lo + k, n)
    votes = score[hi] - score[lo]
    # ≤ k windows of probabilities summing to 1 each: divided by k + 1 the total stays below 1.
    return np.argmax(votes + (psum[hi] - psum[lo]) / (k + 1), axis=1)


def merge_segments(labels: np.ndarray, probs: np.ndarray, spec: ModelSpec, n_windows: int,
                   start_time_s: float = 0.0) -> list[Segment]:
    """Runs of equal smoothed labels → segments with start/end in seconds."""
    if n_windows == 0:
        return []
    rate, win, step = spec.rate_hz, spec.window_len, spec.step
    starts = np.arange(n_windows) * step
    # Boundary between window i-1 and i: middle of their centres, i.e. i*step + (win - step)/2.
    bounds = np.empty(n_windows + 1)
    bounds[1:-1] = starts[1:] + (win - step) / 2
    bounds[0], bounds[-1] = 0.0, starts[-1] + win
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    run_lo = np.concatenate([[0], change])
    run_hi = np.concatenate([change, [n_windows]])
    conf = probs[np.arange(n_windows), labels]
    out = []
    for lo, hi in zip(run_lo, run_hi, strict=True):
        out.append(Segment(start_s=round(start_time_s + bounds[lo] / rate, 6),
                           end_s=round(start_time_s + bounds[hi] / rate, 6),
                           activity=spec.classes[int(labels[lo])],
                           confidence=round(float(conf[lo:hi].mean()), 6)))
    return out


def recording_windows(samples: np.ndarray, rate_hz: float, spec: ModelSpec) -> np.ndarray:
    """(N, C) samples at ``rate_hz`` in model channel order → (n, window_len, C) float32 windows."""
    x = np.asarray(samples, dtype=np.float64)
    if abs(rate_hz - spec.rate_hz) > 1e-9:
        from har.preprocess.signal import resample

        x = resample(x, rate_hz, spec.rate_hz)
    return np.ascontiguousarray(sliding_windows(x.astype(np.float32), spec.window_len, spec.step))


def smooth(raw: np.ndarray, probs: np.ndarray, method: str, windows: int, switch_prob: float,
           spec: ModelSpec | None = None) -> np.ndarray:
    """serve.smoothing: ``majority`` over ``windows`` windows, or ``hmm``: the Viterbi path of the
    context HMM (har/serving/context.py) with persistence ``switch_prob`` and the grammar of the
    model's classes (``spec.transitions``; persistence only without one)."""
    if method == "hmm":
        classes = spec.classes if spec is not None else [str(i) for i in range(probs.shape[1])]
        grammar = spec.transitions if spec is not None else {}
        return viterbi(probs, context_transitions(classes, grammar, switch_prob))
    if method == "majority":
        return smooth_predictions(raw, probs, windows)
    raise ValueError(f"smoothing must be 'majority' or 'hmm', got {method!r}")


def predict_timeline(model: LoadedModel, samples: np.ndarray, rate_hz: float, smoothing_windows: int,
                     start_time_s: float = 0.0, batch_size: int = 1024, *, method: str = "majority",
                     switch_prob: float = 0.05) -> Timeline:
    """The whole recording path: resample, window, predict (batched), smooth, merge."""
    spec = model.spec
    windows = recording_windows(samples, rate_hz, spec)
    n = len(windows)
    if n:
        probs = np.concatenate([model.predict_proba(windows[i:i + batch_size])
                                for i in range(0, n, batch_size)])
    else:
        probs = np.empty((0, len(spec.classes)), np.float32)
    raw = probs.argmax(axis=1) if n else np.empty(0, np.int64)
    smoothed = smooth(raw, probs, method, smoothing_windows, switch_prob, spec)
    return Timeline(windows=windows, probs=probs, raw_pred=raw, smoothed=smoothed,
                    window_start_s=start_time_s + np.arange(n) * spec.step / spec.rate_hz,
                    segments=merge_segments(smoothed, probs, spec, n, start_time_s))


def activity_at(segments: list[Segment], times_s: np.ndarray) -> np.ndarray:
    """The timeline's activity at each time (object array; None outside every segment)."""
    out = np.full(len(times_s), None, dtype=object)
    if not segments:
        return out
    ends = np.array([s.end_s for s in segments])
    starts = np.array([s.start_s for s in segments])
    idx = np.searchsorted(ends, times_s, side="right")
    inside = (idx < len(segments))
    inside[inside] &= times_s[inside] >= starts[idx[inside]]
    names = np.array([s.activity for s in segments], dtype=object)
    out[inside] = names[idx[inside]]
    return out


def label_agreement(segments: list[Segment], times_s: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of labelled samples (non-null label) whose timeline activity equals the label."""
    import pandas as pd

    labels = np.asarray(labels, dtype=object)
    mask = ~pd.isna(labels)
    if not mask.any():
        return float("nan")
    got = activity_at(segments, np.asarray(times_s, np.float64)[mask])
    return float(np.mean(got == labels[mask]))
