"""PSI / KS and the drift report on synthetic distributions; reference and recent-input readers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from har.monitoring.drift import drift_report, ks, psi
from har.monitoring.recent import from_recordings, load_recent
from har.monitoring.reference import (
    build_reference,
    feature_reference,
    load_reference,
    window_features,
    write_reference,
)

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def _windows(n: int, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (n, 1, len(CHANNELS)))  # per-window level
    return (base + rng.normal(0, scale, (n, 64, len(CHANNELS))) + shift).astype(np.float32)


@pytest.fixture(scope="module")
def reference() -> dict:
    return build_reference(window_features(_windows(3000), CHANNELS), sample_size=2000)


def test_psi_identical_is_near_zero_and_shift_is_large() -> None:
    rng = np.random.default_rng(1)
    ref = feature_reference(rng.normal(0, 1, 20000))
    same = psi(ref["proportions"], ref["edges"], rng.normal(0, 1, 5000))
    shifted = psi(ref["proportions"], ref["edges"], rng.normal(1.5, 1, 5000))
    assert same < 0.02
    assert shifted > 1.0
    # a value outside the reference range falls into the open-ended outer bins
    assert psi(ref["proportions"], ref["edges"], np.full(100, 99.0)) > 5


def test_ks_identical_vs_shifted() -> None:
    rng = np.random.default_rng(2)
    sample = rng.normal(0, 1, 5000)
    stat, p = ks(sample, rng.normal(0, 1, 3000))
    assert stat < 0.05 and p > 0.01
    stat, p = ks(sample, rng.normal(1.0, 1, 3000))
    assert stat > 0.3 and p < 1e-6


def test_reference_shape_and_roundtrip(reference: dict, tmp_path: Path) -> None:
    assert set(reference["features"]) == {f"{c}_{s}" for c in CHANNELS for s in ("mean", "std")}
    f = reference["features"]["acc_x_mean"]
    assert len(f["proportions"]) == len(f["edges"]) + 1 == 10
    assert abs(sum(f["proportions"]) - 1) < 1e-9
    assert len(f["sample"]) == 2000
    path = write_reference(reference, tmp_path / "ref" / "reference_stats.json")
    assert load_reference(path) == json.loads(json.dumps(reference))
    assert not list(path.parent.glob(".*"))  # atomic write leaves no temp file


@pytest.mark.parametrize("method,threshold", [("psi", 0.2), ("ks", 0.1)])
def test_drift_report_flags_only_shifted_channels(reference: dict, method: str, threshold: float) -> None:
    recent = window_features(_windows(800, seed=5), CHANNELS)
    rep = drift_report(reference, recent, method, threshold, 1)
    assert not rep.drifted and rep.n_drifted == 0 and rep.n_recent == 800

    X = _windows(800, seed=6)
    X[..., 0] += 3.0  # acc_x offset (a rotated phone)
    X[..., 4] *= 3.0  # gyro_y gain
    rep = drift_report(reference, window_features(X, CHANNELS), method, threshold, 1)
    assert rep.drifted
    assert {c.channel for c in rep.channels if c.drifted} == {"acc_x", "gyro_y"}
    assert not drift_report(reference, window_features(X, CHANNELS), method, threshold, 3).drifted
    md = rep.to_markdown()
    assert "DRIFT DETECTED" in md and "acc_x" in md
    json.dumps(rep.to_dict())


def test_empty_and_partial_recent(reference: dict) -> None:
    rep = drift_report(reference, pd.DataFrame(), "psi", 0.2, 1)
    assert not rep.drifted and rep.n_recent == 0 and len(rep.missing) == 12
    acc_only = window_features(_windows(200, seed=7)[..., :3], CHANNELS[:3])
    rep = drift_report(reference, acc_only, "psi", 0.2, 1)
    assert [c.channel for c in rep.channels] == CHANNELS[:3]
    assert sorted(rep.missing) == sorted(f"{c}_{s}" for c in CHANNELS[3:] for s in ("mean", "std"))


def test_recent_from_inference_log(tmp_path: Path) -> None:
    from har.serving.inference_log import make_record

    X = _windows(5, seed=8)
    rec = make_record("/v1/predict", "3", CHANNELS, X, ["WALKING"] * 5)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / f"{rec['time'][:10]}.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    df = load_recent(log_dir, SimpleNamespace(), since_hours=1.0)
    assert len(df) == 10
    np.testing.assert_allclose(df["acc_x_mean"].to_numpy()[:5], X[:, :, 0].mean(axis=1), atol=1e-5)
    assert load_recent(log_dir, SimpleNamespace(), since_hours=0.0).empty


def test_recent_from_recordings(tmp_path: Path) -> None:
    from har.data.ingest import write_recordings

    n = 1000
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"subject": 1, "session": "s1", "sample": np.arange(n), "t": np.arange(n) / 50,
                       **{c: rng.normal(0, 1, n) for c in CHANNELS}, "label": None})
    path = tmp_path / "rec" / "recordings.parquet"
    write_recordings(df, path, sampling_rate_hz=50.0, source="own")
    p = SimpleNamespace(preprocess=SimpleNamespace(window_s=2.56, target_rate_hz=50.0, overlap=0.5))
    feats = from_recordings([path], p)
    assert len(feats) == (n - 128) // 64 + 1
    np.testing.assert_allclose(feats["acc_y_std"].iloc[0], df["acc_y"].iloc[:128].std(ddof=0), rtol=1e-5)
    assert len(load_recent(path.parent, p)) == len(feats)
