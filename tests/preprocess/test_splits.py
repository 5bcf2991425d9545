"""Subject-level splits, leakage checks and the train-only normaliser."""

from __future__ import annotations

import numpy as np
import pytest

from har.errors import DataError
from har.preprocess.normalize import Normalizer, fit_normalizer
from har.preprocess.splits import check_no_leak, group_kfold, official_split

SUBJECTS = list(range(1, 31))
TEST = [2, 4, 9, 10, 12, 13, 18, 20, 24]


def test_official_split_disjoint_and_seeded() -> None:
    s = official_split(np.array(SUBJECTS * 3), TEST, n_val=3, seed=7)
    assert s["test"] == TEST and len(s["val"]) == 3
    assert sorted(s["train"] + s["val"] + s["test"]) == SUBJECTS
    assert not set(s["val"]) & set(TEST)
    check_no_leak(s)
    assert official_split(SUBJECTS, TEST, 3, 7) == s
    assert any(official_split(SUBJECTS, TEST, 3, k)["val"] != s["val"] for k in range(1, 6))


def test_official_split_too_few() -> None:
    with pytest.raises(DataError):
        official_split([1, 2, 3], [1], n_val=2, seed=0)


def test_group_kfold_each_subject_tested_once() -> None:
    folds = group_kfold(SUBJECTS, k=5, seed=0)
    assert len(folds) == 5
    tested = [s for f in folds for s in f["test"]]
    assert sorted(tested) == SUBJECTS
    for f in folds:
        check_no_leak(f)
        assert sorted(f["train"] + f["test"]) == SUBJECTS
    with pytest.raises(DataError):
        group_kfold([1, 2], k=3, seed=0)


def test_check_no_leak_names_subject_and_splits() -> None:
    with pytest.raises(DataError, match=r"subject 5.*'train'.*'test'"):
        check_no_leak({"train": [1, 5], "val": [2], "test": [5]})


def test_normalizer_fitted_on_train_only() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (50, 8, 2)), rng.normal(100, 10, (50, 8, 2))])
    mask = np.arange(100) < 50
    n = fit_normalizer(X.astype(np.float32), mask)
    assert np.all(np.abs(n.mean) < 0.2) and np.all(np.abs(n.std - 1) < 0.1)
    Z = n.apply(X[mask])
    assert Z.dtype == np.float32 and abs(Z.mean()) < 1e-5
    r = Normalizer.from_json(n.to_json())
    np.testing.assert_allclose(r.mean, n.mean)
    np.testing.assert_allclose(r.std, n.std)
    const = fit_normalizer(np.ones((4, 3, 1), np.float32), np.ones(4, bool))
    assert np.isfinite(const.apply(np.ones((1, 3, 1)))).all()
