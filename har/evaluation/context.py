"""Scoring with context beyond one window: the windows of each recording, in time order, decoded by
the context HMM the API's timeline uses (har/serving/context.py: persistence plus the grammar of
postural transitions), so "with context" scores measure what `/v1/predict/recording` serves.

Decoding uses no test label: only the order of the test windows and the model's probabilities.
``count_transitions`` (transition probabilities counted on training labels) is kept for comparison
in benchmarks/quality.py: on HAPT it learns the data collection's scripted order of activities,
which the grammar deliberately does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from har.serving.context import context_transitions, viterbi

if TYPE_CHECKING:
    from har.preprocess.windows import Windows


def recording_sequences(w: Windows, mask: np.ndarray) -> list[np.ndarray]:
    """Indices of the windows selected by ``mask``, one array per (subject, session), in time order."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    order = np.lexsort((w.start_s[idx], w.session[idx].astype(str), w.subject[idx]))
    idx = idx[order]
    keys = np.char.add(w.subject[idx].astype(str), np.char.add("/", w.session[idx].astype(str)))
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.split(idx, cuts)


def count_transitions(y: np.ndarray, sequences: list[np.ndarray], n_classes: int,
                      pseudo_count: float = 0.5) -> np.ndarray:
    """P(next window's class | this window's class), counted over consecutive windows of the given
    sequences (training subjects'), with a pseudo-count so no transition is impossible."""
    counts = np.full((n_classes, n_classes), float(pseudo_count))
    for seq in sequences:
        labels = y[seq]
        np.add.at(counts, (labels[:-1], labels[1:]), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def decode_recordings(probs: np.ndarray, sequences: list[np.ndarray], transitions: np.ndarray) -> np.ndarray:
    """Viterbi labels for every window of ``sequences`` (indices into ``probs``); -1 elsewhere."""
    out = np.full(len(probs), -1, np.int64)
    for seq in sequences:
        out[seq] = viterbi(probs[seq], transitions)
    return out


def decode_selected(probs: np.ndarray, w: Windows, mask: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """Viterbi labels under ``transitions`` for the windows selected by ``mask`` (in their order in
    ``w``), each recording decoded on its own; ``probs`` holds one row per selected window."""
    full = np.zeros((len(w.y), probs.shape[1]), np.float64)
    full[mask] = probs
    return decode_recordings(full, recording_sequences(w, mask), transitions)[mask]


def context_predictions(probs: np.ndarray, w: Windows, mask: np.ndarray, classes: list[str],
                        grammar: dict[str, dict[str, list[str]]], switch_prob: float) -> np.ndarray:
    """The context HMM's labels (persistence and the grammar) for the windows selected by ``mask``."""
    return decode_selected(probs, w, mask, context_transitions(classes, grammar, switch_prob))
