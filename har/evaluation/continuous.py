"""Continuous recognition: the timeline a user gets for a whole recording (/v1/predict/recording,
`har predict`), scored sample by sample against the labels, and the smoothing chosen on validation
subjects only.

Window-level scores (``har evaluate``) judge windows the preprocess kept (mostly pure ones);
sample-level scores judge every labelled sample of every session, transitions and their edges
included, through the same resampling, windowing, smoothing and merging the API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from har.evaluation.metrics import classification_metrics
from har.serving.model import LoadedModel
from har.serving.timeline import activity_at, predict_timeline


@dataclass(frozen=True)
class Smoothing:
    method: str  # majority | hmm
    windows: int = 1
    switch_prob: float = 0.05

    def label(self) -> str:
        if self.method == "hmm":
            return f"hmm p={self.switch_prob:g}"
        return "none" if self.windows <= 1 else f"majority k={self.windows}"


def default_grid() -> list[Smoothing]:
    return ([Smoothing("majority", k) for k in (1, 3, 5, 7, 9)]
            + [Smoothing("hmm", 1, p) for p in (0.3, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002)])


def sample_scores(model: LoadedModel, recordings: pd.DataFrame, rate_hz: float, subjects: list[int],
                  classes: list[str], smoothing: Smoothing) -> dict[str, Any]:
    """Sample-level accuracy and macro-F1 of the timelines of every session of ``subjects``
    (labelled samples only; a sample no segment covers counts as wrong)."""
    channels = model.spec.channels
    truth: list[np.ndarray] = []
    pred: list[np.ndarray] = []
    rec = recordings[recordings["subject"].isin(subjects)]
    rec = rec.sort_values(["subject", "session", "sample"], kind="stable")
    for _, g in rec.groupby(["subject", "session"], sort=False, observed=True):
        labels = g["label"].to_numpy(object)
        mask = ~pd.isna(labels)
        if not mask.any():
            continue
        t = g["t"].to_numpy(np.float64)
        tl = predict_timeline(model, g[channels].to_numpy(np.float64), rate_hz, smoothing.windows,
                              start_time_s=float(t[0]), method=smoothing.method,
                              switch_prob=smoothing.switch_prob)
        truth.append(labels[mask])
        pred.append(activity_at(tl.segments, t[mask]))
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[c] for c in np.concatenate(truth)], np.int64)
    # outside every segment (a session's tail shorter than a window) is "no class": always wrong
    y_pred = np.array([index.get(c, -1) if c is not None else -1 for c in np.concatenate(pred)], np.int64)
    m = classification_metrics(y_true, y_pred, classes)
    return {"smoothing": smoothing.label(), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "n_samples": int(len(y_true)), "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()}}


def choose_smoothing(model: LoadedModel, recordings: pd.DataFrame, rate_hz: float,
                     val_subjects: list[int], classes: list[str],
                     grid: list[Smoothing] | None = None) -> tuple[Smoothing, list[dict[str, Any]]]:
    """The smoothing with the best sample-level macro-F1 on the validation subjects (never the test
    subjects), and every candidate's validation scores."""
    rows = []
    best: tuple[float, Smoothing] | None = None
    for s in grid or default_grid():
        score = sample_scores(model, recordings, rate_hz, val_subjects, classes, s)
        rows.append(score)
        if best is None or score["macro_f1"] > best[0]:
            best = (score["macro_f1"], s)
    assert best is not None
    return best[1], rows
