"""A small chest-worn, accelerometer-only data set of our own: 7 activities, a few subjects, a few
sessions each, written as a phone app would export it (CSV, m/s², millisecond epoch timestamps,
100 Hz with jitter). Used by tests/integration/test_own_recordings.py and by the tutorial in
docs/own_recordings.md (`python tests/integration/own_support.py data/own`).

Signals follow simple per-activity patterns a model can learn: the posture sets where gravity
points in the device frame (x up the torso, z out of the chest), movement adds periodic
acceleration with its own rhythm and size. Each subject wears the device slightly rotated, moves
at a personal pace and has sensor noise, so test subjects are not copies of training ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

G = 9.80665
RATE_HZ = 100.0
ACTIVITIES = ["lying", "sitting", "standing", "walking", "jogging", "cycling", "jumping"]
ACC = ["acc_x", "acc_y", "acc_z"]


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


# where "up" points in the device frame (the accelerometer reads +1 g along it at rest)
UP = {"lying": _unit((0.05, 0.0, 1.0)), "sitting": _unit((0.94, 0.0, 0.34)),
      "standing": _unit((1.0, 0.0, 0.0)), "walking": _unit((1.0, 0.0, 0.05)),
      "jogging": _unit((1.0, 0.0, 0.1)), "cycling": _unit((0.8, 0.0, 0.6)),
      "jumping": _unit((1.0, 0.0, 0.0))}


def activity_signal(activity: str, t: np.ndarray, rng: np.random.Generator, pace: float = 1.0,
                    size: float = 1.0) -> np.ndarray:
    """(len(t), 3) acceleration in g for ``activity``, device frame, before mounting rotation."""
    up = np.broadcast_to(UP[activity], (len(t), 3)).copy()
    ph = rng.uniform(0, 2 * np.pi)
    w = 2 * np.pi * pace
    x, y, z = (np.zeros_like(t) for _ in range(3))
    if activity in ("lying", "sitting", "standing"):
        sway = 0.01 * np.sin(w * 0.25 * t + ph)  # breathing and postural sway
        x, z = sway, sway
    elif activity == "walking":
        f = 1.9
        x = 0.28 * size * np.sin(w * f * t + ph) + 0.08 * np.sin(2 * w * f * t)
        y = 0.12 * size * np.sin(w * f / 2 * t + ph)
        z = 0.10 * size * np.sin(w * f * t + ph + 1.0)
    elif activity == "jogging":
        f = 2.7
        x = 0.9 * size * np.abs(np.sin(w * f / 2 * t + ph)) ** 3 - 0.25
        y = 0.25 * size * np.sin(w * f / 2 * t + ph)
        z = 0.2 * size * np.sin(w * f * t + ph + 0.5)
    elif activity == "cycling":
        f = 1.3
        y = 0.10 * size * np.sin(w * f * t + ph)
        x = 0.05 * size * np.sin(2 * w * f * t + ph)
    elif activity == "jumping":
        f = 1.6
        x = 1.4 * size * np.clip(np.sin(w * f * t + ph), 0, None) ** 2 - 0.35
        y = 0.35 * size * np.sin(w * f * t + ph + 1.5)
    return up + np.stack([x, y, z], axis=1)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = _unit(tuple(rng.normal(size=3)))
    a = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def session_frame(subject: int, session: int, seed: int, segment_s: float = 15.0,
                  gap_s: float = 2.0, rate_hz: float = RATE_HZ) -> pd.DataFrame:
    """One session: every activity once, in a random order, with unlabelled moves between."""
    rng = np.random.default_rng([seed, subject, session])
    subj_rng = np.random.default_rng([seed, subject])
    mount = _rotation(subj_rng, 6.0)
    pace, size = subj_rng.uniform(0.9, 1.1), subj_rng.uniform(0.85, 1.15)
    parts, labels = [], []
    for i, activity in enumerate(rng.permutation(ACTIVITIES)):
        t = np.arange(0, segment_s, 1 / rate_hz)
        parts.append(activity_signal(str(activity), t, rng, pace, size))
        labels += [str(activity)] * len(t)
        if i < len(ACTIVITIES) - 1:  # getting up, sitting down …: unlabelled
            n = int(gap_s * rate_hz)
            parts.append(np.linspace(parts[-1][-1], UP["standing"], n))
            labels += [""] * n
    acc = np.concatenate(parts) @ mount.T
    acc += rng.normal(0, 0.02, acc.shape)
    n = len(acc)
    # a phone's clock: epoch milliseconds with a little jitter around the nominal 10 ms step
    t_ms = 1.76e12 + 1e5 * subject + np.arange(n) * 1000.0 / rate_hz + rng.uniform(-1, 1, n)
    return pd.DataFrame({"timestamp": np.round(t_ms, 3), "subject": subject,
                         **{c: np.round(acc[:, i] * G, 5) for i, c in enumerate(ACC)},
                         "label": labels})


def write_dataset(folder: Path, subjects: tuple[int, ...] = (1, 2, 3, 4, 5, 6), sessions: int = 2,
                  seed: int = 0, segment_s: float = 15.0) -> list[Path]:
    """``folder/subject<NN>/session<K>.csv`` for each subject and session; returns the files."""
    files = []
    for s in subjects:
        for k in range(1, sessions + 1):
            path = Path(folder) / f"subject{s:02d}" / f"session{k}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            session_frame(s, k, seed, segment_s).to_csv(path, index=False)
            files.append(path)
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/own")
    written = write_dataset(out)
    print(f"wrote {len(written)} recordings of {len(ACTIVITIES)} activities under {out}")
