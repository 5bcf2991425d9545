"""Sliding windows, label policies, resampling, gravity split and the windows file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.errors import DataError
from har.preprocess.signal import MAX_POLYPHASE_FACTOR, gravity_body_split, resample, resample_factors
from har.preprocess.windows import Windows, load_windows, make_windows, save_windows, sliding_windows

CH = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
CLASSES = ["WALKING", "SITTING"]


def _session(labels: list[str | None], subject: int = 1, session: str = "a") -> pd.DataFrame:
    n = len(labels)
    rng = np.random.default_rng(subject)
    return pd.DataFrame({
        "subject": subject, "session": session, "sample": np.arange(n),
        "t": np.arange(n) / 50.0,
        **{c: rng.normal(0, 1, n).astype(np.float32) for c in CH},
        "label": pd.array(labels, dtype="string"),
    })


def _mw(df: pd.DataFrame, policy: str = "majority", purity: float = 0.8, **kw: object) -> Windows:
    args = dict(rate_hz=50.0, target_rate_hz=50.0, window_s=0.2, overlap=0.5,
                label_policy=policy, min_purity=purity, classes=CLASSES, channels=CH)
    args.update(kw)
    return make_windows(df, **args)  # type: ignore[arg-type]


def test_sliding_windows_equal_naive_loop() -> None:
    x = np.arange(47 * 3, dtype=np.float32).reshape(47, 3)
    for win, step in [(10, 5), (10, 10), (7, 3), (47, 1)]:
        got = sliding_windows(x, win, step)
        naive = np.stack([x[s:s + win] for s in range(0, len(x) - win + 1, step)])
        np.testing.assert_array_equal(got, naive)
    assert sliding_windows(x, 48, 1).shape == (0, 48, 3)


def test_window_count_and_metadata() -> None:
    # 10-sample windows, step 5, 100 samples → (100 - 10) // 5 + 1 = 19 windows
    w = _mw(_session(["WALKING"] * 100))
    assert w.X.shape == (19, 10, 6) and w.X.dtype == np.float32
    assert w.y.dtype == np.int64 and (w.y == 0).all()
    np.testing.assert_allclose(w.start_s, np.arange(19) * 0.1)
    assert set(w.subject) == {1} and set(w.session) == {"a"} and w.rate_hz == 50.0


def test_majority_purity_and_unlabelled() -> None:
    # one window of 10: 8 WALKING + 2 SITTING → purity 0.8
    df = _session(["WALKING"] * 8 + ["SITTING"] * 2)
    assert len(_mw(df, purity=0.8).X) == 1
    assert len(_mw(df, purity=0.9).X) == 0
    # 7 WALKING + 3 unlabelled → purity 0.7 (unlabelled is not a class)
    df = _session(["WALKING"] * 7 + [None] * 3)
    assert len(_mw(df, purity=0.7).X) == 1 and len(_mw(df, purity=0.8).X) == 0
    assert len(_mw(_session([None] * 10), purity=0.0).X) in (0, 1)


def test_drop_mixed_keeps_only_pure() -> None:
    df = _session(["WALKING"] * 20 + ["SITTING"] * 20)
    w = _mw(df, policy="drop_mixed", purity=0.0)
    # windows start at 0,5,..,30; pure: 0,5,10 (WALKING) and 20,25,30 (SITTING); 15 is mixed
    np.testing.assert_allclose(w.start_s * 50, [0, 5, 10, 20, 25, 30])
    np.testing.assert_array_equal(w.y, [0, 0, 0, 1, 1, 1])
    assert len(_mw(_session(["WALKING"] * 9 + [None]), policy="drop_mixed").X) == 0


def test_sessions_never_straddled() -> None:
    df = pd.concat([_session(["WALKING"] * 12, 1, "a"), _session(["SITTING"] * 12, 2, "b")])
    w = _mw(df, overlap=0.0)
    assert len(w.X) == 2 and list(w.subject) == [1, 2] and list(w.y) == [0, 1]


def test_unknown_label_raises() -> None:
    with pytest.raises(DataError, match="JUMPING"):
        _mw(_session(["JUMPING"] * 10))


def test_resample_length_and_rate() -> None:
    t = np.arange(1000) / 100.0
    x = np.sin(2 * np.pi * 1.0 * t)[:, None]
    y = resample(x, 100.0, 50.0)
    assert y.shape == (500, 1)
    np.testing.assert_allclose(y[50:-50, 0], np.sin(2 * np.pi * np.arange(500) / 50.0)[50:-50],
                               atol=1e-2)
    assert resample(x, 50.0, 50.0) is x
    assert len(resample(np.zeros((300, 2)), 50.0, 20.0)) == 120


@pytest.mark.parametrize("rate_in", [0.0001907, 50 / 262208, 0.000389184, 5e-324, 0.0, -1.0,
                                     float("nan"), float("inf"), 1e9])
def test_resample_refuses_unbounded_work_before_allocating(rate_in: float) -> None:
    """Regression: these rates once asked resample_poly for filters of 2e9 taps (tens of GiB)."""
    with pytest.raises(ValueError, match="resample"):
        resample_factors(rate_in, 50.0)
    with pytest.raises(ValueError, match="resample"):
        resample(np.zeros((2, 6)), rate_in, 50.0)


@pytest.mark.parametrize("rate_in", [1.0, 20.0, 32.0, 52.3, 100.0, 400.0, 1999.9, 2000.0])
def test_resample_factors_cover_every_sensor_rate(rate_in: float) -> None:
    up, down = resample_factors(rate_in, 50.0)
    assert max(up, down) <= MAX_POLYPHASE_FACTOR
    assert abs(up / down - 50.0 / rate_in) / (50.0 / rate_in) < 1e-3


def test_make_windows_with_resampling() -> None:
    w = _mw(_session(["WALKING"] * 200), target_rate_hz=25.0, window_s=0.4)  # 100 samples at 25 Hz
    assert w.X.shape[1] == 10 and len(w.X) == (100 - 10) // 5 + 1 and w.rate_hz == 25.0


def test_gravity_split_recovers_constant_gravity() -> None:
    t = np.arange(2000) / 50.0
    grav = np.array([0.0, 0.0, 1.0])
    body = 0.3 * np.sin(2 * np.pi * 2.0 * t)[:, None] * np.array([1.0, 0.5, 0.2])
    g, b = gravity_body_split(body + grav, 50.0, cutoff_hz=0.3)
    np.testing.assert_allclose(g[100:-100], np.broadcast_to(grav, g[100:-100].shape), atol=1e-2)
    np.testing.assert_allclose(b[100:-100], body[100:-100], atol=1e-2)
    np.testing.assert_allclose(g + b, body + grav, atol=1e-9)


def test_gravity_split_channels() -> None:
    w = _mw(_session(["WALKING"] * 100), gravity_split=True)
    assert w.channels == [*CH, "body_acc_x", "body_acc_y", "body_acc_z",
                          "grav_acc_x", "grav_acc_y", "grav_acc_z"]
    np.testing.assert_allclose(w.X[..., 6:9] + w.X[..., 9:12], w.X[..., :3], atol=1e-5)


def test_save_load_roundtrip_and_errors(tmp_path: Path) -> None:
    w = _mw(_session(["WALKING"] * 100))
    path = tmp_path / "w.npz"
    save_windows(w, path)
    r = load_windows(path)
    np.testing.assert_array_equal(r.X, w.X)
    np.testing.assert_array_equal(r.y, w.y)
    assert list(r.session) == list(w.session) and r.channels == w.channels
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]
    np.savez(tmp_path / "bad.npz", X=w.X)
    with pytest.raises(DataError, match=r"bad\.npz.*missing"):
        load_windows(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", X=w.X, y=w.y[:-1], subject=w.subject, session=w.session,
             start_s=w.start_s, channels=np.array(w.channels), rate_hz=np.array(50.0))
    with pytest.raises(DataError, match=r"short\.npz"):
        load_windows(tmp_path / "short.npz")
    with pytest.raises(DataError, match="nope"):
        load_windows(tmp_path / "nope.npz")
