"""Own-recordings import: other rates and units, accelerometer-only devices, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.data.ingest import COLUMNS
from har.data.own import import_recordings
from har.errors import DataError


def _phone_csv(path: Path, rate: float = 100.0, seconds: float = 4.0) -> None:
    t = np.arange(0, seconds, 1 / rate)
    pd.DataFrame({
        "timestamp": t,
        "acc_x": np.full_like(t, 9.80665), "acc_y": np.zeros_like(t), "acc_z": t,  # m/s2
        "gyro_x": np.full_like(t, 180.0), "gyro_y": np.zeros_like(t), "gyro_z": np.zeros_like(t),
        "label": np.where(t < 2, "WALKING", "SITTING"),
    }).to_csv(path, index=False)


def test_100hz_units_converted_to_canonical_50hz(tmp_path: Path) -> None:
    _phone_csv(tmp_path / "walk.csv")
    df = import_recordings([tmp_path / "walk.csv"], 50.0, subject=7, acc_unit="m/s2",
                           gyro_unit="deg/s")
    assert list(df.columns) == COLUMNS
    assert np.allclose(np.diff(df["t"]), 0.02)
    assert df["acc_x"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert df["gyro_x"].to_numpy() == pytest.approx(np.pi, abs=1e-5)
    assert df["acc_z"].iloc[50] == pytest.approx(1.0 / 9.80665, abs=1e-5)  # t = 1 s
    assert (df["subject"] == 7).all() and (df["session"] == "walk").all()
    assert df["label"].iloc[0] == "WALKING" and df["label"].iloc[-1] == "SITTING"


def test_accelerometer_only_parquet_with_sessions(tmp_path: Path) -> None:
    t = np.arange(0, 3, 1 / 25)
    frame = pd.DataFrame({"timestamp": np.concatenate([t, t]),
                          "session": ["a"] * len(t) + ["b"] * len(t), "subject": 3,
                          "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0})
    frame.to_parquet(tmp_path / "watch.parquet")
    df = import_recordings([tmp_path / "watch.parquet"], 50.0)
    assert set(df["session"]) == {"a", "b"}
    assert df["gyro_x"].isna().all() and df["label"].isna().all()
    assert (df.groupby("session")["sample"].max() == 148).all()  # last sample 2.96 s at 50 Hz


def test_iso_timestamps(tmp_path: Path) -> None:
    ts = pd.date_range("2026-01-01", periods=100, freq="40ms")
    pd.DataFrame({"timestamp": ts.astype(str), "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0}) \
        .to_csv(tmp_path / "iso.csv", index=False)
    df = import_recordings([tmp_path / "iso.csv"], 50.0)
    assert df["t"].iloc[-1] == pytest.approx(3.96)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,acc_x,acc_y\n0,1,2\n", r"missing required column\(s\) \['acc_z'\]"),
        ("", "empty file"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0,1,2,3\n", "not strictly increasing at row 1"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0.1,x,2,3\n", "column 'acc_x' has non-numeric"),
        ("timestamp,acc_x,acc_y,acc_z,gyro_x\n0,1,2,3,4\n", "gyroscope needs all of"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        import_recordings([path])
    assert "bad.csv" in str(err.value)


def test_acc_only_channels_in_parquet_metadata(tmp_path: Path) -> None:
    from har.data.ingest import read_recordings, write_recordings

    t = np.arange(0, 1, 1 / 30)
    pd.DataFrame({"timestamp": t, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0}) \
        .to_csv(tmp_path / "w.csv", index=False)
    df = import_recordings([tmp_path / "w.csv"], 50.0)
    assert df.attrs["channels"] == ["acc_x", "acc_y", "acc_z"]
    write_recordings(df, tmp_path / "r.parquet", 50.0, "own")
    assert read_recordings(tmp_path / "r.parquet")[1]["channels"] == ["acc_x", "acc_y", "acc_z"]


def test_labels_take_nearest_sample(tmp_path: Path) -> None:
    # 30 Hz input: label switches at 1.0 s; output sample at 0.99 s must still be "A".
    t = np.arange(0, 2, 1 / 30)
    pd.DataFrame({"timestamp": t, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0,
                  "label": np.where(t < 0.999, "A", "B")}).to_csv(tmp_path / "l.csv", index=False)
    df = import_recordings([tmp_path / "l.csv"], 100.0)
    assert df["label"].iloc[0] == "A" and df["label"].iloc[-1] == "B"
    assert df["label"].iloc[int(0.97 * 100)] == "A"
