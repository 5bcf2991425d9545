"""Context beyond one window: the windows of a recording form a sequence, and activities follow each
other in patterns (SIT_TO_STAND sits between SITTING and STANDING, never between two WALKINGs).

A hidden Markov model over the window sequence of each recording, with the class-to-class transition
probabilities counted on the training subjects' label sequences and the model's window probabilities
as emissions, picks the most likely label sequence (Viterbi). It uses no test label: only the order
of the test windows and the model's outputs. This is how whole recordings are scored (the
``/v1/predict/recording`` timeline smooths the same way); windows judged one by one are scored
without it.
"""

from __future__ import annotations

import numpy as np

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


def transition_matrix(y: np.ndarray, sequences: list[np.ndarray], n_classes: int,
                      pseudo_count: float = 0.5) -> np.ndarray:
    """P(next window's class | this window's class), counted over consecutive windows of the given
    sequences (training subjects'), with a pseudo-count so no transition is impossible."""
    counts = np.full((n_classes, n_classes), float(pseudo_count))
    for seq in sequences:
        labels = y[seq]
        np.add.at(counts, (labels[:-1], labels[1:]), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def viterbi(probs: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """The most likely class sequence given per-window class probabilities (treated as scaled
    likelihoods: the models are trained class-balanced) and a transition matrix."""
    n, k = probs.shape
    if n == 0:
        return np.empty(0, np.int64)
    emit = np.log(np.clip(probs.astype(np.float64), 1e-12, None))
    log_a = np.log(transitions)
    score = emit[0] - np.log(k)
    back = np.empty((n, k), np.int64)
    for t in range(1, n):
        cand = score[:, None] + log_a  # [from, to]
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(k)] + emit[t]
    path = np.empty(n, np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def decode_recordings(probs: np.ndarray, sequences: list[np.ndarray], transitions: np.ndarray) -> np.ndarray:
    """Viterbi labels for every window of ``sequences`` (indices into ``probs``); -1 elsewhere."""
    out = np.full(len(probs), -1, np.int64)
    for seq in sequences:
        out[seq] = viterbi(probs[seq], transitions)
    return out
