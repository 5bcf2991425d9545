"""Context over a recording's windows: sequences in time order per session, transitions counted on
label sequences, and Viterbi decoding that removes what the transitions rule out and keeps what
they allow."""

from __future__ import annotations

import numpy as np

from har.evaluation.context import (
    context_predictions,
    count_transitions,
    decode_recordings,
    recording_sequences,
)
from har.preprocess.windows import Windows
from har.serving.context import viterbi

SIT, SIT_TO_STAND, STAND = 0, 1, 2


def _windows(subject: list[int], session: list[str], start: list[float], y: list[int]) -> Windows:
    n = len(y)
    return Windows(X=np.zeros((n, 4, 1), np.float32), y=np.array(y), subject=np.array(subject),
                   session=np.array(session), start_s=np.array(start, float), channels=["acc_x"],
                   rate_hz=50.0)


def test_sequences_follow_time_within_each_recording() -> None:
    w = _windows([2, 1, 1, 2, 1], ["b", "a", "a", "b", "a"], [1.0, 2.0, 0.0, 0.0, 1.0], [0, 0, 0, 0, 0])
    seqs = recording_sequences(w, np.ones(5, bool))
    assert [s.tolist() for s in seqs] == [[2, 4, 1], [3, 0]]
    assert [s.tolist() for s in recording_sequences(w, np.array([1, 1, 0, 1, 1], bool))] == [[4, 1], [3, 0]]
    assert recording_sequences(w, np.zeros(5, bool)) == []


def test_transitions_are_counted_on_consecutive_windows() -> None:
    y = np.array([SIT, SIT, SIT_TO_STAND, STAND, STAND])
    a = count_transitions(y, [np.arange(5)], 3, pseudo_count=0.0 + 1e-9)
    assert np.allclose(a.sum(axis=1), 1.0)
    assert np.allclose(a[SIT], [0.5, 0.5, 0.0], atol=1e-6)  # sit → sit, sit → transition
    assert np.allclose(a[SIT_TO_STAND], [0.0, 0.0, 1.0], atol=1e-6)
    assert np.allclose(a[STAND], [0.0, 0.0, 1.0], atol=1e-6)
    assert (count_transitions(y, [np.arange(5)], 3) > 0).all()  # the pseudo-count: nothing impossible


def test_viterbi_removes_a_ruled_out_flip_and_keeps_a_real_transition() -> None:
    y = np.array([SIT] * 6 + [SIT_TO_STAND] * 2 + [STAND] * 6)
    a = count_transitions(y, [np.arange(len(y))], 3, pseudo_count=0.01)
    probs = np.array([[0.9, 0.05, 0.05], [0.35, 0.05, 0.6],  # a lone STAND inside sitting
                      [0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    assert probs.argmax(1).tolist() == [SIT, STAND, SIT, SIT_TO_STAND, STAND, STAND]
    assert viterbi(probs, a).tolist() == [SIT, SIT, SIT, SIT_TO_STAND, STAND, STAND]
    # without context evidence against it, a confident prediction stands
    uniform = np.full((3, 3), 1 / 3)
    assert viterbi(probs, uniform).tolist() == probs.argmax(1).tolist()


def test_decode_recordings_fills_only_the_given_windows() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    out = decode_recordings(probs, [np.array([0, 1])], np.full((2, 2), 0.5))
    assert out.tolist() == [0, 1, -1]


def test_context_predictions_decode_each_recording_of_the_selection() -> None:
    # two recordings of sitting, each with one window the model calls standing
    w = _windows([1] * 5 + [2] * 5, ["a"] * 5 + ["b"] * 5, list(range(5)) * 2, [SIT] * 10)
    probs = np.tile([0.8, 0.1, 0.1], (10, 1))
    probs[2] = probs[7] = [0.4, 0.1, 0.5]
    mask = np.ones(10, bool)
    mask[9] = False  # not selected: no row in probs
    out = context_predictions(probs[mask], w, mask, ["SITTING", "SIT_TO_STAND", "STANDING"], {}, 0.05)
    assert out.tolist() == [SIT] * 9
