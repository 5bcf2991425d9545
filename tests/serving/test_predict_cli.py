"""`har predict` on a canonical recordings parquet and on an own-recordings CSV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from serving_support import CHANNELS, REPO

HAR = [sys.executable, "-m", "har.cli"]


def _har(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HAR, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg"})


def _canonical(path: Path) -> Path:
    from har.data.ingest import COLUMNS, write_recordings

    rng = np.random.default_rng(0)
    frames = []
    for subject, session, n in ((1, "exp01", 900), (1, "exp02", 700)):
        df = pd.DataFrame({c: rng.normal(size=n).astype(np.float32) for c in CHANNELS})
        df["acc_x"] += 1.0
        df["subject"] = np.int16(subject)
        df["session"] = pd.array([session] * n, dtype="string")
        df["sample"] = np.arange(n, dtype=np.int32)
        df["t"] = np.arange(n) / 50.0
        df["label"] = pd.array(["WALKING"] * (n // 2) + [None] * (n - n // 2), dtype="string")
        frames.append(df[COLUMNS])
    write_recordings(pd.concat(frames, ignore_index=True), path, 50.0, source="test")
    return path


def test_predict_canonical_parquet_writes_timeline_and_pngs(random_onnx: Path, tmp_path: Path) -> None:
    src = _canonical(tmp_path / "recordings.parquet")
    out = tmp_path / "out" / "timeline.csv"
    res = _har("predict", str(src), "--out", str(out), "--model-uri", str(random_onnx))
    assert res.returncode == 0, res.stderr
    tl = pd.read_csv(out)
    assert list(tl.columns) == ["file", "subject", "session", "start_s", "end_s", "activity", "confidence"]
    assert set(tl["session"]) == {"exp01", "exp02"}
    for _, g in tl.groupby("session"):
        assert g["start_s"].iloc[0] == 0.0
        np.testing.assert_allclose(g["end_s"].to_numpy()[:-1], g["start_s"].to_numpy()[1:])
    pngs = sorted((tmp_path / "out" / "timeline_plots").glob("*.png"))
    assert [p.name for p in pngs] == ["recordings_s1_exp01.png", "recordings_s1_exp02.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "agreement with labels" in res.stdout


def test_predict_own_csv_to_parquet(random_onnx: Path, tmp_path: Path) -> None:
    n = 1200  # 12 s at 100 Hz, gyro in deg/s: resampled to the model's 50 Hz on import
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"timestamp": np.arange(n) / 100.0,
                       **{c: rng.normal(size=n) for c in CHANNELS}})
    df[["gyro_x", "gyro_y", "gyro_z"]] *= 57.3
    src = tmp_path / "phone.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "tl.parquet"
    res = _har("predict", str(src), "--out", str(out), "--model-uri", str(random_onnx),
               "--gyro-unit", "deg/s", "--plots-dir", str(tmp_path / "plots"))
    assert res.returncode == 0, res.stderr
    tl = pd.read_parquet(out)
    assert tl["end_s"].max() <= 12.0 and set(tl["session"]) == {"phone"}
    assert (tmp_path / "plots" / "phone_s0_phone.png").is_file()


def test_predict_errors_are_short(random_onnx: Path, tmp_path: Path) -> None:
    src = tmp_path / "acc_only.csv"
    pd.DataFrame({"timestamp": np.arange(300) / 50, "acc_x": 1.0, "acc_y": 0.0, "acc_z": 0.0}
                 ).to_csv(src, index=False)
    res = _har("predict", str(src), "--out", str(tmp_path / "x.csv"), "--model-uri", str(random_onnx))
    assert res.returncode == 1 and "gyro_x" in res.stderr and "Traceback" not in res.stderr
    res = _har("predict", str(src), "--out", str(tmp_path / "x.csv"), "--model-uri",
               str(tmp_path / "none.onnx"))
    assert res.returncode == 1 and "not found" in res.stderr
