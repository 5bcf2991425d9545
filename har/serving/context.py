"""Context beyond one window: an HMM over the window sequence of a recording.

Each window's class probabilities are the emissions; the transition matrix says how activities
follow each other. Two things go into it, neither learned from any recording:

* persistence: an activity lasts, so a window keeps its predecessor's class with probability
  ``1 - switch_prob`` (``serve.hmm_switch_prob``, chosen on validation subjects);
* the grammar of the classes (``preprocess.transitions``, carried in the model's metadata): a
  postural transition such as STAND_TO_SIT can only follow an activity it leaves (standing, or
  walking up to the chair) and only precede one it enters (sitting). Other activities change freely
  into one another.

The Viterbi path under that matrix is the timeline the API returns for a recording
(``/v1/predict/recording``, ``har predict``) and what the evaluation's "with context" scores measure
(har/evaluation/context.py). With no grammar it is a sticky HMM: persistence only.
"""

from __future__ import annotations

import numpy as np

# a move the grammar rules out keeps this much probability, so a confident model can still assert it
RULED_OUT = 1e-4


def context_transitions(classes: list[str], grammar: dict[str, dict[str, list[str]]],
                        switch_prob: float) -> np.ndarray:
    """The K×K transition matrix (rows: from, columns: to) of the context HMM."""
    if not 0 < switch_prob < 1:
        raise ValueError(f"switch_prob must be in (0, 1), got {switch_prob}")
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    if not grammar:
        a = np.full((k, k), switch_prob / max(k - 1, 1))
        np.fill_diagonal(a, 1.0 - switch_prob)
        return a
    a = np.full((k, k), RULED_OUT)
    activities = [c for c in classes if c not in grammar]
    for i, c in enumerate(classes):
        if c in grammar:  # a transition ends in an activity it enters
            nexts = [n for n in grammar[c]["enters"] if n in index]
        else:  # an activity changes into another one, or into a transition that leaves it
            nexts = [n for n in activities if n != c] + [t for t, g in grammar.items() if c in g["leaves"]]
        for n in nexts:
            a[i, index[n]] = switch_prob / len(nexts)
        a[i, i] = 1.0 - switch_prob
    return a / a.sum(axis=1, keepdims=True)


def viterbi(probs: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """The most likely class sequence of one recording's windows: ``probs`` (n, K) are the model's
    class probabilities (scaled likelihoods: the models are trained class-balanced)."""
    n, k = probs.shape
    if n == 0:
        return np.empty(0, np.int64)
    emit = np.log(np.clip(probs.astype(np.float64), 1e-12, None))
    log_a = np.log(transitions)
    score = emit[0] - np.log(k)
    back = np.empty((n, k), np.int64)
    cols = np.arange(k)
    for t in range(1, n):
        cand = score[:, None] + log_a  # [from, to]
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], cols] + emit[t]
    path = np.empty(n, np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
