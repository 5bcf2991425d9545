"""Windowing, resampling, gravity split, normalisation and subject splits on small real arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.contracts import PROCESSED_FILES as OUTPUTS
from har.contracts import SENSOR_CHANNELS
from har.errors import DataError
from har.preprocess.normalize import Normalizer, fit_normalizer
from har.preprocess.pipeline import preprocess
from har.preprocess.splits import check_no_leak, group_kfold, official_split
from har.preprocess.windows import gravity_body_split, load_windows, make_windows, resample, sliding_windows

BASE_CHANNELS = list(SENSOR_CHANNELS)

CLASSES = ["WALKING", "SITTING"]


def _recordings(subjects: tuple[int, ...] = (1, 2, 3, 4), n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for s in subjects:
        labels = np.array(["WALKING"] * (n // 2) + [None] * 50 + ["SITTING"] * (n - n // 2 - 50),
                          dtype=object)
        frames.append(pd.DataFrame({
            "subject": np.int16(s), "session": f"s{s}", "sample": np.arange(n, dtype=np.int32),
            "t": np.arange(n) / 50.0,
            **{c: rng.normal(s, 1, n).astype(np.float32) for c in BASE_CHANNELS},
            "label": pd.array(labels, dtype="string"),
        }))
    return pd.concat(frames, ignore_index=True)


def test_sliding_windows_equal_naive_loop() -> None:
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    w = sliding_windows(x, 10, 4)
    naive = np.stack([x[i:i + 10] for i in range(0, 50 - 10 + 1, 4)])
    assert np.array_equal(w, naive)
    assert sliding_windows(x[:5], 10, 4).shape == (0, 10, 3)


def test_window_counts_and_majority_purity() -> None:
    w = make_windows(_recordings((1,)), 50, 50, 1.0, 0.5, "majority", 0.8, CLASSES, BASE_CHANNELS)
    # 1000 samples, 50-sample windows, step 25 → 39 windows; those overlapping the 50 unlabelled
    # samples by more than 20 % are dropped.
    assert w.X.shape[1:] == (50, 6) and 30 <= len(w.X) < 39
    assert set(w.y.tolist()) == {0, 1}
    loose = make_windows(_recordings((1,)), 50, 50, 1.0, 0.5, "majority", 0.5, CLASSES,
                         BASE_CHANNELS)
    strict = make_windows(_recordings((1,)), 50, 50, 1.0, 0.5, "drop_mixed", 0.5, CLASSES,
                          BASE_CHANNELS)
    assert len(strict.X) < len(loose.X)  # half-labelled edge windows kept only by majority


def test_unknown_label_is_clear() -> None:
    df = _recordings((1,))
    df.loc[0, "label"] = "FLYING"
    with pytest.raises(DataError, match="FLYING"):
        make_windows(df, 50, 50, 1.0, 0.5, "majority", 0.8, CLASSES, BASE_CHANNELS)


def test_resample_rate_and_gravity_split() -> None:
    t = np.arange(0, 10, 1 / 100)
    x = np.sin(2 * np.pi * 1.0 * t)[:, None]
    y = resample(x, 100, 50)
    assert len(y) == 500
    assert np.allclose(y[100:400, 0], np.sin(2 * np.pi * t[::2][100:400]), atol=0.02)
    acc = np.column_stack([0.9 + 0.3 * np.sin(2 * np.pi * 2 * t), np.zeros_like(t),
                           np.full_like(t, 0.1)])
    grav, body = gravity_body_split(acc, 100, 0.3)
    assert np.allclose(grav[200:-200, 0], 0.9, atol=0.02)
    assert np.allclose(grav + body, acc)


def test_splits_official_kfold_and_leak() -> None:
    sp = official_split(list(range(1, 31)), [2, 4, 9, 10, 12, 13, 18, 20, 24], 4, 42)
    assert sp["test"] == [2, 4, 9, 10, 12, 13, 18, 20, 24] and len(sp["val"]) == 4
    assert len(sp["train"]) == 17
    check_no_leak(sp)
    assert official_split(list(range(1, 31)), [2], 4, 42) == official_split(
        list(range(1, 31)), [2], 4, 42)
    folds = group_kfold(list(range(1, 31)), 10, 0)
    tests = [s for f in folds for s in f["test"]]
    assert sorted(tests) == list(range(1, 31))
    assert all(not set(f["train"]) & set(f["test"]) for f in folds)
    with pytest.raises(DataError, match="subject 3 is in both 'train' and 'test'"):
        check_no_leak({"train": [1, 3], "test": [3]})


def test_normalizer_fitted_on_train_only() -> None:
    X = np.concatenate([np.zeros((10, 5, 2)), np.full((10, 5, 2), 100.0)]).astype(np.float32)
    mask = np.arange(20) < 10
    X[:10] += np.random.default_rng(0).normal(0, 1, (10, 5, 2)).astype(np.float32)
    norm = fit_normalizer(X, mask, ["a", "b"])
    assert np.all(np.abs(norm.mean) < 1)  # the 100s of the other subjects are not seen
    back = Normalizer.from_json(norm.to_json())
    assert np.allclose(back.apply(X[:10]).mean(), 0, atol=1e-5)


def test_pipeline_outputs_and_atomicity(tmp_path: Path) -> None:
    out = tmp_path / "processed"
    kwargs = dict(target_rate_hz=50, window_s=1.0, overlap=0.5, label_policy="majority",
                  min_purity=0.8, gravity_split=False, gravity_cutoff_hz=0.3, classes=CLASSES,
                  test_subjects=[2], n_val=1, cv_folds=2, seed=0)
    stats = preprocess(_recordings(), 50.0, out, **kwargs)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    w = load_windows(out / "windows.npz")
    assert len(w.X) == stats["n_windows"]
    splits = json.loads((out / "splits.json").read_text())
    assert splits["test"] == [2] and len(splits["folds"]) == 2
    norm = Normalizer.from_json((out / "normalizer.json").read_text())
    train = np.isin(w.subject, splits["train"])
    assert np.allclose(norm.mean, w.X[train].reshape(-1, 6).mean(0), atol=1e-4)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError):
        preprocess(_recordings(), 50.0, out, **{**kwargs, "window_s": 100.0})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_load_windows_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "w.npz"
    np.savez(bad, X=np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match=r"w\.npz: missing arrays"):
        load_windows(bad)
    (tmp_path / "t.npz").write_text("not an npz")
    with pytest.raises(DataError, match="not a readable windows npz"):
        load_windows(tmp_path / "t.npz")
