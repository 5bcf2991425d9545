"""Ingest: the canonical table on the real mirror, and the bad-input matrix on written files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from har.data.ingest import COLUMNS, read_hapt, read_recordings, write_recordings
from har.errors import DataError

MIRROR = os.environ.get("HAR_DATA_MIRROR")


def _toy(root: Path, n: int = 300) -> Path:
    raw = root / "RawData"
    raw.mkdir(parents=True)
    (root / "activity_labels.txt").write_text("1 WALKING\n2 SITTING\n")
    rows = "\n".join("0.1 0.2 0.9" for _ in range(n)) + "\n"
    (raw / "acc_exp01_user01.txt").write_text(rows)
    (raw / "gyro_exp01_user01.txt").write_text(rows.replace("0.9", "0.0"))
    (raw / "labels.txt").write_text("1 1 1 1 100\n1 1 2 151 300\n")
    return root


def test_toy_ingest_labels_are_one_based_inclusive(tmp_path: Path) -> None:
    df = read_hapt(_toy(tmp_path / "d"))
    assert list(df.columns) == COLUMNS
    assert df["label"].iloc[0] == "WALKING" and df["label"].iloc[99] == "WALKING"
    assert df["label"].isna().iloc[100:150].all()
    assert df["label"].iloc[150] == "SITTING" and df["label"].iloc[299] == "SITTING"
    assert df["t"].iloc[50] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated", r"acc_exp01_user01\.txt:300: expected 3 columns, got 2"),
        ("nan", r"acc_exp01_user01\.txt:5: NaN"),
        ("unknown_label", r"labels\.txt: unknown activity id 9"),
        ("no_gyro", r"has no matching gyroscope file gyro_exp01_user01\.txt"),
        ("empty", r"acc_exp01_user01\.txt: empty file"),
        ("rows_differ", r"gyro_exp01_user01\.txt: 299 rows, expected 300"),
        ("segment_past_end", r"labels\.txt: segment 151-400 of exp 1 outside"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, case: str, message: str) -> None:
    root = _toy(tmp_path / "d")
    acc = root / "RawData" / "acc_exp01_user01.txt"
    gyro = root / "RawData" / "gyro_exp01_user01.txt"
    labels = root / "RawData" / "labels.txt"
    if case == "truncated":
        acc.write_text(acc.read_text()[:-4] + "\n")
    elif case == "nan":
        lines = acc.read_text().splitlines()
        lines[4] = "nan 0.2 0.9"
        acc.write_text("\n".join(lines) + "\n")
    elif case == "unknown_label":
        labels.write_text("1 1 9 1 100\n")
    elif case == "no_gyro":
        gyro.unlink()
    elif case == "empty":
        acc.write_text("")
    elif case == "rows_differ":
        gyro.write_text("\n".join(gyro.read_text().splitlines()[:-1]) + "\n")
    elif case == "segment_past_end":
        labels.write_text("1 1 2 151 400\n")
    with pytest.raises(DataError, match=message):
        read_hapt(root)


def test_write_is_atomic_and_keeps_metadata(tmp_path: Path) -> None:
    df = read_hapt(_toy(tmp_path / "d"))
    out = tmp_path / "interim" / "recordings.parquet"
    write_recordings(df, out, 50.0, "toy")
    back, meta = read_recordings(out)
    assert meta["sampling_rate_hz"] == 50.0 and meta["units"]["gyro"] == "rad/s"
    assert back["label"].isna().sum() == df["label"].isna().sum()
    good = out.read_bytes()
    with pytest.raises(DataError, match="missing columns"):
        write_recordings(df.drop(columns=["acc_x"]), out, 50.0, "toy")
    assert out.read_bytes() == good
    assert [p.name for p in out.parent.iterdir()] == ["recordings.parquet"]


def test_not_a_parquet_is_clear(tmp_path: Path) -> None:
    bad = tmp_path / "r.parquet"
    bad.write_text("hello")
    with pytest.raises(DataError, match="not a readable parquet"):
        read_recordings(bad)


@pytest.mark.integration
@pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")
def test_real_hapt_subset(tmp_path: Path) -> None:
    df = read_hapt(Path(MIRROR) / "hapt", subjects=[1, 2])
    assert set(df["subject"].unique()) == {1, 2}
    assert df["session"].nunique() == 4
    assert np.isfinite(df[["acc_x", "gyro_z"]].to_numpy()).all()
    # labels.txt "1 1 5 250 1232": STANDING on 1-based samples 250..1232 inclusive.
    s1 = df[df["session"] == "exp01"]
    assert s1["label"].isna().iloc[248]
    assert s1["label"].iloc[249] == "STANDING" and s1["label"].iloc[1231] == "STANDING"
    assert s1["label"].iloc[1232] == "STAND_TO_SIT"
    raw = Path(MIRROR) / "hapt" / "RawData"
    n_user1 = sum(len((raw / f).read_text().splitlines())
                  for f in ("acc_exp01_user01.txt", "acc_exp02_user01.txt"))
    assert int((df["subject"] == 1).sum()) == n_user1


@pytest.mark.integration
@pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")
def test_labels_are_one_based_inclusive_against_official_windows() -> None:
    """Windowing each segment (128 samples, step 64) reproduces the official window counts
    per (subject, activity) exactly only when a segment holds end - start + 1 samples."""
    from collections import Counter

    root = Path(MIRROR) / "hapt"
    segs = np.loadtxt(root / "RawData/labels.txt", dtype=int)
    official = Counter()
    for part in ("Train/y_train.txt", "Test/y_test.txt"):
        ys = np.loadtxt(root / part, dtype=int)
        subj = np.loadtxt(root / part.replace("y_", "subject_id_"), dtype=int)
        official.update(zip(subj.tolist(), ys.tolist(), strict=True))

    def counts(extra: int) -> Counter:
        c: Counter = Counter()
        for _, user, act, start, end in segs:
            c[(int(user), int(act))] += max(0, (end - start + extra - 128) // 64 + 1)
        return c

    assert counts(1) == official
    assert counts(0) != official
