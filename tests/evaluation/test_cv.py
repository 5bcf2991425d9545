"""The subject k-fold protocol (har/evaluation/cv.py): fold construction, no leak, the tables.

The no-leak check gives every subject a class of its own, and windows that name their subject
plainly (a constant offset per subject). A model that never saw a subject cannot predict that
subject's class (a class absent from training gets probability 0), so without a leak every fold
scores accuracy 0; one test window in training and the trees find it: accuracy well above 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.config import TrainParams
from har.evaluation.cv import cross_validate, summarize, summary_markdown, write_cv_tables
from har.preprocess.windows import Windows

SUBJECTS = [1, 2, 3, 4, 5, 6, 7]
PER_SUBJECT = 10
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
CLASSES = [f"subject{s}" for s in SUBJECTS]
FOLDS, N_VAL, SEED = 3, 1, 11


def _windows() -> Windows:
    rng = np.random.default_rng(0)
    subject = np.repeat(SUBJECTS, PER_SUBJECT)
    X = rng.normal(0, 0.1, (len(subject), 64, len(CHANNELS))) + subject[:, None, None]
    return Windows(X=X.astype(np.float32), y=np.array([SUBJECTS.index(s) for s in subject], np.int64),
                   subject=subject, session=np.array([f"s{s}" for s in subject]),
                   start_s=np.tile(np.arange(PER_SUBJECT, dtype=float), len(SUBJECTS)),
                   channels=CHANNELS, rate_hz=50.0)


def _run(seed: int = SEED, **kwargs: object) -> pd.DataFrame:
    tp = TrainParams(model="classic", classic={"estimator": "rf", "max_iter": 10}, seed=0)
    return cross_validate(_windows(), CLASSES, ["classic"], tp, folds=FOLDS, n_val=N_VAL, seed=seed,
                          window_s=1.28, overlap=0.5, epochs=1, **kwargs)


@pytest.fixture(scope="module")
def folds() -> pd.DataFrame:
    return _run()


def test_every_subject_is_tested_exactly_once(folds: pd.DataFrame) -> None:
    assert folds["fold"].tolist() == [1, 2, 3]
    tested = [[int(s) for s in t.split()] for t in folds["test_subjects"]]
    assert sorted(s for t in tested for s in t) == SUBJECTS
    assert sorted(len(t) for t in tested) == [2, 2, 3]  # 7 subjects in 3 near-equal folds
    assert folds["n_test_windows"].tolist() == [len(t) * PER_SUBJECT for t in tested]


def test_folds_follow_the_seed(folds: pd.DataFrame) -> None:
    again = _run()
    assert again["test_subjects"].tolist() == folds["test_subjects"].tolist()
    others = [_run(seed)["test_subjects"].tolist() for seed in (1, 2, 3)]
    assert any(o != folds["test_subjects"].tolist() for o in others)


def test_no_test_or_validation_subject_reaches_training(folds: pd.DataFrame) -> None:
    assert (folds["accuracy"] == 0).all(), folds[["fold", "test_subjects", "accuracy"]]
    assert (folds["macro_f1"] == 0).all()


def test_skip_leaves_folds_out() -> None:
    rows = _run(skip=lambda model, fold: fold != 2)
    assert rows["fold"].tolist() == [2]


def test_summary_and_tables(tmp_path: Path) -> None:
    results = pd.DataFrame([
        {"model": "a", "fold": 1, "macro_f1": 0.5, "accuracy": 0.6, "n_params": 10, "train_seconds": 1.0},
        {"model": "a", "fold": 2, "macro_f1": 0.7, "accuracy": 0.8, "n_params": 10, "train_seconds": 3.0},
        {"model": "b", "fold": 1, "macro_f1": 0.9, "accuracy": 0.9, "n_params": 2000, "train_seconds": 5.0},
    ])
    s = summarize(results)
    assert s["model"].tolist() == ["b", "a"]  # best first
    a = s.set_index("model").loc["a"]
    assert a["macro_f1_mean"] == pytest.approx(0.6) and a["macro_f1_std"] == pytest.approx(0.2 / np.sqrt(2))
    assert a["train_seconds_per_fold"] == pytest.approx(2.0) and a["folds"] == 2
    assert s.set_index("model").loc["b", "macro_f1_std"] == 0.0  # one fold: no spread, not NaN
    md = summary_markdown(s)
    assert "| b | 0.900 ± 0.000 | 0.900 ± 0.000 | 2,000 | 5.0 | 1 |" in md
    assert "| a | 0.600 ± 0.141 | 0.700 ± 0.141 | 10 | 2.0 | 2 |" in md

    paths = write_cv_tables(results, tmp_path)
    assert pd.read_csv(paths["folds"]).equals(results)
    assert pd.read_csv(paths["summary"])["model"].tolist() == ["b", "a"]
    assert paths["markdown"].read_text() == md
