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


def test_viterbi_keeps_a_confident_short_run_and_drops_flicker() -> None:
    from har.serving.timeline import viterbi_smooth

    k = 3
    probs = np.full((20, k), 0.05)
    probs[:, 0] = 0.9
    probs[8:11] = [0.04, 0.95, 0.01]  # three confident windows of class 1: a real transition
    probs[15] = [0.45, 0.1, 0.45]     # one unsure window: flicker
    path = viterbi_smooth(probs, switch_prob=0.05)
    assert path[8:11].tolist() == [1, 1, 1] and set(path[:8]) == {0} and path[15] == 0
    # a majority vote of 7 windows erases the transition the HMM keeps
    assert 1 not in smooth_predictions(probs.argmax(1), probs, 7).tolist()
    # a tiny switch probability makes changes dearer: the 3-window run is then smoothed away
    assert set(viterbi_smooth(probs, switch_prob=1e-6)) == {0}


def test_viterbi_is_the_exact_map_path_on_a_small_case() -> None:
    """Brute force over all 3^5 paths gives the same best path."""
    import itertools

    from har.serving.timeline import viterbi_smooth

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=5)
    p = 0.2
    stay, move = np.log(1 - p), np.log(p / 2)

    def score(path: tuple[int, ...]) -> float:
        s = sum(np.log(probs[t, c]) for t, c in enumerate(path))
        return s + sum(stay if a == b else move for a, b in itertools.pairwise(path))

    best = max(itertools.product(range(3), repeat=5), key=score)
    assert tuple(viterbi_smooth(probs, p).tolist()) == best
