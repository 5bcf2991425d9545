"""Great Expectations suites against a real file-backed GX project (a copy in tmp)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.errors import ValidationFailed
from har.validation.run import raise_for_failure, validate_recordings, validate_windows

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["WALKING", "SITTING"]


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("gx") / "great_expectations"
    shutil.copytree(REPO / "great_expectations", dest,
                    ignore=shutil.ignore_patterns("uncommitted"))
    return dest


def _recordings() -> pd.DataFrame:
    n = 200
    frames = []
    for s in (1, 2):
        frames.append(pd.DataFrame({
            "subject": np.int16(s), "session": pd.array([f"exp{s}"] * n, dtype="string"),
            "sample": np.arange(n, dtype=np.int32), "t": np.arange(n) / 50.0,
            "acc_x": np.float32(0.1), "acc_y": np.float32(0.2), "acc_z": np.float32(0.9),
            "gyro_x": np.float32(0.0), "gyro_y": np.float32(0.1), "gyro_z": np.float32(-0.1),
            "label": pd.array(["WALKING"] * 100 + [None] * 100, dtype="string"),
        }))
    return pd.concat(frames, ignore_index=True)


def _validate(df: pd.DataFrame, gx_dir: Path, docs: Path | None = None, subjects=(1, 2)):
    return validate_recordings(df, project_dir=gx_dir, classes=CLASSES, sampling_rate_hz=50.0,
                               subjects=list(subjects), docs_dir=docs)


def test_good_recordings_pass_and_docs_built(gx_dir: Path, tmp_path: Path) -> None:
    report = _validate(_recordings(), gx_dir, tmp_path / "docs")
    assert report.success, report.summary()
    raise_for_failure(report)
    assert (tmp_path / "docs" / "index.html").is_file()


def _set(col: str, value: object, rows: slice = slice(10, 13)) -> Callable[[pd.DataFrame], None]:
    def mutate(df: pd.DataFrame) -> None:
        df.loc[df.index[rows], col] = value
    return mutate


def _slow_clock(df: pd.DataFrame) -> None:
    """Timestamps 0.04 s apart (25 Hz) while 50 Hz is declared."""
    df["t"] = df["sample"].to_numpy() * 0.04


@pytest.mark.parametrize(
    ("mutate", "expectation", "column", "example"),
    [
        (_set("acc_x", np.nan), "expect_column_values_to_not_be_null", "acc_x", None),
        (_set("acc_y", 50.0), "expect_column_values_to_be_between", "acc_y", "50.0"),
        (_set("gyro_z", np.inf), "expect_column_values_to_be_between", "gyro_z", "inf"),
        (_set("label", "FLYING"), "expect_column_values_to_be_in_set", "label", "FLYING"),
        (_set("sample", 5, slice(20, 21)), "expect_column_values_to_be_between", "sample_step",
         None),
        (_set("t", 0.45, slice(20, 21)), "expect_column_values_to_be_between", "dt", None),
        (_slow_clock, "expect_column_values_to_be_between", "dt", "0.04"),
    ],
    ids=["nan", "acc_range", "inf", "unknown_label", "non_increasing_sample", "wrong_rate",
         "rate_25hz"],
)
def test_bad_recordings_fail_with_named_report(gx_dir: Path, mutate, expectation: str,
                                               column: str, example: str | None) -> None:
    df = _recordings()
    mutate(df)
    report = _validate(df, gx_dir)
    assert not report.success
    summary = report.summary()
    assert expectation in summary and f"'{column}'" in summary
    if example:
        assert example in summary
    with pytest.raises(ValidationFailed, match=column):
        raise_for_failure(report)


def test_missing_subject_fails(gx_dir: Path) -> None:
    report = _validate(_recordings(), gx_dir, subjects=(1, 2, 3))
    assert not report.success
    assert "expect_column_distinct_values_to_contain_set on column 'subject'" in report.summary()
    assert "missing [3]" in report.summary()


def _windows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    subject = np.repeat([1, 2, 3], 4)
    y = np.tile([0, 1], 6)
    return np.zeros((12, 8, 6), np.float32), y, subject


def test_windows_good_and_bad(gx_dir: Path) -> None:
    X, y, subject = _windows()
    good = validate_windows(X, y, subject, {"train": [1], "val": [2], "test": [3]},
                            classes=CLASSES, window_len=8, project_dir=gx_dir)
    assert good.success, good.summary()
    leak = validate_windows(X, y, subject, {"train": [1, 3], "val": [2], "test": [3]},
                            classes=CLASSES, window_len=8, project_dir=gx_dir)
    assert not leak.success and "splits_of_subject" in leak.summary()
    y_missing = y.copy()
    y_missing[subject == 3] = 0
    missing = validate_windows(X, y_missing, subject, {"train": [1], "val": [2], "test": [3]},
                               classes=CLASSES, window_len=8, project_dir=gx_dir)
    assert not missing.success
    assert "[windows_test] expect_column_distinct_values_to_contain_set" in missing.summary()
    X[0, 0, 0] = np.nan
    nonfinite = validate_windows(X, y, subject, {"train": [1], "val": [2], "test": [3]},
                                 classes=CLASSES, window_len=8, project_dir=gx_dir)
    assert not nonfinite.success and "'finite'" in nonfinite.summary()
