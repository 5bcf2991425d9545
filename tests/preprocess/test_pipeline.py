"""The preprocess stage end to end on synthetic recordings, plus an optional real-HAPT run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.contracts import PROCESSED_FILES as OUTPUTS
from har.preprocess.normalize import Normalizer
from har.preprocess.pipeline import preprocess
from har.preprocess.windows import load_windows

CH = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
CLASSES = ["WALKING", "SITTING"]
KW = dict(target_rate_hz=50.0, window_s=1.0, overlap=0.5, label_policy="majority",
          min_purity=0.8, gravity_split=False, gravity_cutoff_hz=0.3, classes=CLASSES,
          n_val=1, cv_folds=3, seed=0)


def _recordings(subjects: range = range(1, 7), n: int = 1000, gyro: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for s in subjects:
        labels = ["WALKING"] * (n // 2) + [None] * 50 + ["SITTING"] * (n - n // 2 - 50)
        data = {c: rng.normal(s, 1, n).astype(np.float32) for c in CH}
        if not gyro:
            data.update({c: np.full(n, np.nan, np.float32) for c in CH[3:]})
        frames.append(pd.DataFrame({"subject": s, "session": f"exp{s:02d}",
                                    "sample": np.arange(n), "t": np.arange(n) / 50.0, **data,
                                    "label": pd.array(labels, dtype="string")}))
    return pd.concat(frames, ignore_index=True)


def test_pipeline_outputs(tmp_path: Path) -> None:
    out = tmp_path / "processed"
    stats = preprocess(_recordings(), 50.0, out, test_subjects=[5, 6], **KW)  # type: ignore[arg-type]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    w = load_windows(out / "windows.npz")
    assert stats["n_windows"] == len(w.X) and stats["window_len"] == 50
    assert stats["channels"] == CH and stats["n_subjects"] == 6
    assert sum(stats["windows_per_split"].values()) == len(w.X)
    assert sum(stats["windows_per_class"].values()) == len(w.X)
    splits = json.loads((out / "splits.json").read_text())
    assert splits["test"] == [5, 6] and len(splits["val"]) == 1 and len(splits["folds"]) == 3
    assert sorted(s for f in splits["folds"] for s in f["test"]) == list(range(1, 7))
    assert json.loads((out / "label_map.json").read_text()) == {"classes": CLASSES}
    norm = Normalizer.from_json((out / "normalizer.json").read_text())
    train = np.isin(w.subject, splits["train"])
    np.testing.assert_allclose(norm.mean, w.X[train].reshape(-1, 6).mean(0), rtol=1e-4)
    assert not np.allclose(norm.mean, w.X.reshape(-1, 6).mean(0), rtol=1e-3)


def test_pipeline_drops_all_nan_gyro(tmp_path: Path) -> None:
    stats = preprocess(_recordings(gyro=False), 50.0, tmp_path, test_subjects=[6], **KW)  # type: ignore[arg-type]
    assert stats["channels"] == CH[:3]


def test_failure_leaves_no_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "processed"
    with pytest.raises(Exception):  # noqa: B017
        preprocess(_recordings(range(1, 3)), 50.0, out, test_subjects=[1], **KW)  # type: ignore[arg-type]
    assert not out.exists() or not any(p.name in OUTPUTS for p in out.iterdir())
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.integration
def test_real_hapt_three_subjects(tmp_path: Path) -> None:
    mirror = os.environ.get("HAR_DATA_MIRROR")
    if not mirror:
        pytest.skip("HAR_DATA_MIRROR not set")
    raw = Path(mirror) / "hapt" / "RawData"
    names = {1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS", 4: "SITTING",
             5: "STANDING", 6: "LAYING", 7: "STAND_TO_SIT", 8: "SIT_TO_STAND", 9: "SIT_TO_LIE",
             10: "LIE_TO_SIT", 11: "STAND_TO_LIE", 12: "LIE_TO_STAND"}
    labels = np.loadtxt(raw / "labels.txt", dtype=np.int64)
    frames = []
    for acc_path in sorted(raw.glob("acc_exp*_user0[123].txt")):
        exp = int(acc_path.name[7:9])
        user = int(acc_path.name[-6:-4])
        acc = np.loadtxt(acc_path)
        gyro = np.loadtxt(acc_path.with_name(acc_path.name.replace("acc_", "gyro_")))
        lab = np.full(len(acc), None, dtype=object)
        for _, _, act, a, b in labels[(labels[:, 0] == exp) & (labels[:, 1] == user)]:
            lab[a - 1:b] = names[act]
        frames.append(pd.DataFrame({"subject": user, "session": f"exp{exp:02d}",
                                    "sample": np.arange(len(acc)), "t": np.arange(len(acc)) / 50,
                                    **{c: np.hstack([acc, gyro])[:, i].astype(np.float32)
                                       for i, c in enumerate(CH)},
                                    "label": pd.array(lab, dtype="string")}))
    kw = {**KW, "window_s": 2.56, "classes": list(names.values()), "n_val": 1, "cv_folds": 3}
    stats = preprocess(pd.concat(frames, ignore_index=True), 50.0, tmp_path,
                       test_subjects=[2], **kw)  # type: ignore[arg-type]
    assert stats["n_subjects"] == 3 and stats["window_len"] == 128 and stats["n_windows"] > 300
