"""The context HMM of the timeline: persistence alone keeps a confident short run and drops flicker,
Viterbi is the exact best path, and the grammar of postural transitions rules out a transition the
activities around it cannot explain (without forbidding it outright)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from har.serving.context import RULED_OUT, context_transitions, viterbi
from har.serving.timeline import smooth_predictions

CLASSES = ["SITTING", "STANDING", "WALKING", "SIT_TO_STAND", "STAND_TO_SIT"]
GRAMMAR = {"SIT_TO_STAND": {"leaves": ["SITTING"], "enters": ["STANDING", "WALKING"]},
           "STAND_TO_SIT": {"leaves": ["STANDING", "WALKING"], "enters": ["SITTING"]}}


def test_sticky_hmm_keeps_a_confident_short_run_and_drops_flicker() -> None:
    k = 3
    probs = np.full((20, k), 0.05)
    probs[:, 0] = 0.9
    probs[8:11] = [0.04, 0.95, 0.01]  # three confident windows of class 1: a real transition
    probs[15] = [0.45, 0.1, 0.45]     # one unsure window: flicker
    sticky = context_transitions(["a", "b", "c"], {}, 0.05)
    path = viterbi(probs, sticky)
    assert path[8:11].tolist() == [1, 1, 1] and set(path[:8]) == {0} and path[15] == 0
    # a majority vote of 7 windows erases the transition the HMM keeps
    assert 1 not in smooth_predictions(probs.argmax(1), probs, 7).tolist()
    # a tiny switch probability makes changes dearer: the 3-window run is then smoothed away
    assert set(viterbi(probs, context_transitions(["a", "b", "c"], {}, 1e-6))) == {0}


def test_viterbi_is_the_exact_map_path() -> None:
    """Brute force over all 3^5 paths gives the same best path, for a sticky and a grammar matrix."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=5)
    for a in (context_transitions(["x", "y", "z"], {}, 0.2),
              context_transitions(["x", "y", "x_TO_y"], {"x_TO_y": {"leaves": ["x"], "enters": ["y"]}}, 0.2)):
        def score(path: tuple[int, ...], a: np.ndarray = a) -> float:
            s = sum(np.log(probs[t, c]) for t, c in enumerate(path))
            return s + sum(np.log(a[i, j]) for i, j in itertools.pairwise(path))

        best = max(itertools.product(range(3), repeat=5), key=score)
        assert tuple(viterbi(probs, a).tolist()) == best


def test_the_grammar_shapes_the_matrix() -> None:
    a = context_transitions(CLASSES, GRAMMAR, 0.1)
    i = {c: n for n, c in enumerate(CLASSES)}
    assert np.allclose(a.sum(axis=1), 1.0) and np.allclose(np.diag(a), 0.9, atol=1e-3)
    # sitting can become standing, walking, or start SIT_TO_STAND, never STAND_TO_SIT
    assert a[i["SITTING"], i["SIT_TO_STAND"]] > 0.02 and a[i["SITTING"], i["STAND_TO_SIT"]] < 2 * RULED_OUT
    # a transition ends only in what it enters
    assert a[i["SIT_TO_STAND"], i["STANDING"]] > 0.04 and a[i["SIT_TO_STAND"], i["SITTING"]] < 2 * RULED_OUT
    # without a grammar every change is alike (persistence only)
    sticky = context_transitions(CLASSES, {}, 0.1)
    off = sticky[~np.eye(len(CLASSES), dtype=bool)]
    assert np.allclose(off, 0.1 / (len(CLASSES) - 1))
    with pytest.raises(ValueError, match="switch_prob"):
        context_transitions(CLASSES, GRAMMAR, 1.0)


def test_the_grammar_rules_out_an_unexplained_transition() -> None:
    """Three windows that look like STAND_TO_SIT in the middle of sitting are not one (one cannot
    sit down while sitting): the grammar turns them into sitting; persistence alone keeps them,
    they are confident enough."""
    i = {c: n for n, c in enumerate(CLASSES)}
    probs = np.full((12, len(CLASSES)), 0.02)
    probs[:, i["SITTING"]] = 0.92
    probs[4:7] = 0.0155
    probs[4:7, i["STAND_TO_SIT"]], probs[4:7, i["SITTING"]] = 0.9, 0.038
    probs /= probs.sum(axis=1, keepdims=True)
    sticky = viterbi(probs, context_transitions(CLASSES, {}, 0.1))
    assert sticky[4:7].tolist() == [i["STAND_TO_SIT"]] * 3
    grammar = viterbi(probs, context_transitions(CLASSES, GRAMMAR, 0.1))
    assert set(grammar.tolist()) == {i["SITTING"]}
    # a real sit-to-stand sequence survives the grammar
    real = np.full((9, len(CLASSES)), 0.02)
    for t, c in enumerate(["SITTING"] * 3 + ["SIT_TO_STAND"] * 2 + ["STANDING"] * 4):
        real[t, i[c]] = 0.9
    assert [CLASSES[c] for c in viterbi(real, context_transitions(CLASSES, GRAMMAR, 0.1))] == \
        ["SITTING"] * 3 + ["SIT_TO_STAND"] * 2 + ["STANDING"] * 4
