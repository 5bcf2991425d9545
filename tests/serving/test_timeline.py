"""Window predictions → smoothed segments: geometry, majority filter, agreement."""

from __future__ import annotations

import numpy as np

from har.serving.model import ModelSpec
from har.serving.timeline import (
    Segment,
    activity_at,
    label_agreement,
    merge_segments,
    sliding_windows,
    smooth_predictions,
)

SPEC = ModelSpec(classes=["A", "B", "C"], channels=["x"], rate_hz=50.0, window_len=128, overlap=0.5,
                 window_s=2.56)


def _probs(pred: list[int]) -> np.ndarray:
    p = np.full((len(pred), 3), 0.1)
    p[np.arange(len(pred)), pred] = 0.8
    return p


def test_majority_filter_removes_isolated_flips() -> None:
    pred = np.array([0, 0, 1, 0, 0, 2, 2, 2, 0, 2])
    out = smooth_predictions(pred, _probs(pred.tolist()), 3)
    assert out.tolist() == [0, 0, 0, 0, 0, 2, 2, 2, 2, 2]
    assert smooth_predictions(pred, _probs(pred.tolist()), 1).tolist() == pred.tolist()


def test_tie_goes_to_higher_probability() -> None:
    pred = np.array([0, 1])
    probs = np.array([[0.6, 0.4, 0.0], [0.05, 0.95, 0.0]])
    assert smooth_predictions(pred, probs, 2).tolist() == [1, 1]


def test_segments_tile_the_windows() -> None:
    labels = np.array([0, 0, 1, 1, 1, 0])
    segs = merge_segments(labels, _probs(labels.tolist()), SPEC, 6, start_time_s=10.0)
    assert [s.activity for s in segs] == ["A", "B", "A"]
    assert segs[0].start_s == 10.0
    # Boundary between windows 1 and 2: start of window 2 (128 samples) + (128 - 64) / 2.
    assert segs[0].end_s == segs[1].start_s == 10.0 + (2 * 64 + 32) / 50
    assert segs[-1].end_s == 10.0 + (5 * 64 + 128) / 50
    assert segs[1].confidence == 0.8


def test_agreement_counts_only_labelled_samples() -> None:
    segs = [Segment(0.0, 1.0, "A", 0.9), Segment(1.0, 2.0, "B", 0.9)]
    t = np.array([0.1, 0.5, 1.5, 1.9, 2.5])
    assert activity_at(segs, t).tolist() == ["A", "A", "B", "B", None]
    labels = np.array(["A", None, "A", "B", "B"], dtype=object)
    assert label_agreement(segs, t, labels) == 0.5  # A✓, A✗, B✓, outside✗


def test_window_view_matches_the_training_windows() -> None:
    """The serving copy of the window view (no pandas import) cuts like preprocessing's."""
    from har.preprocess import windows as training

    x = np.arange(1000 * 6, dtype=np.float32).reshape(1000, 6)
    for n, win, step in ((1000, 128, 64), (127, 128, 64), (128, 128, 64), (500, 150, 75), (300, 128, 1)):
        np.testing.assert_array_equal(sliding_windows(x[:n], win, step),
                                      training.sliding_windows(x[:n], win, step))


