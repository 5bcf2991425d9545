"""The recordings suite expects the channels the data has: accelerometer-only recordings pass, a
gyroscope that is half there fails; `har validate` on own data asks for no HAPT subjects."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from har.config import load_params
from har.data.ingest import write_recordings
from har.errors import ValidationFailed
from har.stages.data import validate
from har.validation.run import validate_recordings
from har.validation.suites import expected_channels

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["walk", "sit"]


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("gx") / "great_expectations"
    shutil.copytree(REPO / "great_expectations", dest, ignore=shutil.ignore_patterns("uncommitted"))
    return dest


def _acc_only(subjects: tuple[int, ...] = (3, 7)) -> pd.DataFrame:
    n = 200
    frames = []
    for s in subjects:
        frames.append(pd.DataFrame({
            "subject": np.int16(s), "session": pd.array([f"s{s}"] * n, dtype="string"),
            "sample": np.arange(n, dtype=np.int32), "t": np.arange(n) / 50.0,
            "acc_x": np.float32(1.0), "acc_y": np.float32(0.0), "acc_z": np.float32(0.1),
            **{c: np.full(n, np.nan, np.float32) for c in ("gyro_x", "gyro_y", "gyro_z")},
            "label": pd.array(["walk"] * 100 + ["sit"] * 100, dtype="string"),
        }))
    return pd.concat(frames, ignore_index=True)


def test_expected_channels() -> None:
    acc = ["acc_x", "acc_y", "acc_z"]
    assert expected_channels(acc) == acc
    assert expected_channels([*acc, "gyro_y"]) == [*acc, "gyro_x", "gyro_y", "gyro_z"]


def test_accelerometer_only_recordings_pass(gx_dir: Path) -> None:
    report = validate_recordings(_acc_only(), project_dir=gx_dir, classes=CLASSES, sampling_rate_hz=50.0)
    assert report.success, report.summary()


@pytest.mark.parametrize(("column", "rows"), [("gyro_x", slice(None)), ("gyro_z", slice(0, 200))],
                         ids=["one gyro axis, no other", "gyro on half the rows"])
def test_a_partial_gyroscope_fails_naming_the_empty_column(gx_dir: Path, column: str, rows: slice) -> None:
    df = _acc_only()
    df.loc[df.index[rows], column] = 0.1
    report = validate_recordings(df, project_dir=gx_dir, classes=CLASSES, sampling_rate_hz=50.0)
    assert not report.success
    failed = {(f.expectation, f.column) for f in report.failures}
    if column == "gyro_x":  # the other two axes are empty
        assert ("expect_column_values_to_not_be_null", "gyro_y") in failed
    else:  # half of gyro_z is null
        assert ("expect_column_values_to_not_be_null", "gyro_z") in failed


def test_missing_accelerometer_values_still_fail(gx_dir: Path) -> None:
    df = _acc_only()
    df.loc[df.index[5:8], "acc_y"] = np.nan
    report = validate_recordings(df, project_dir=gx_dir, classes=CLASSES, sampling_rate_hz=50.0)
    assert ("expect_column_values_to_not_be_null", "acc_y") in {
        (f.expectation, f.column) for f in report.failures}


def _project(tmp_path: Path, gx_dir: Path, **data: object) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source="own", interim_path=str(tmp_path / "rec.parquet"), **data)
    raw["preprocess"].update(classes=CLASSES, transitions={})
    raw["validate"].update(gx_dir=str(gx_dir), report_path=str(tmp_path / "validation.json"),
                           docs_dir=str(tmp_path / "docs"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "params.yaml"


def test_validate_stage_on_own_data_takes_subjects_from_the_data(tmp_path: Path, gx_dir: Path) -> None:
    p = load_params(_project(tmp_path, gx_dir))
    write_recordings(_acc_only(), p.data.interim_path, 50.0, "own")
    assert "validation passed" in validate(p)["summary"]  # subjects 3 and 7, not HAPT's 1..30
    # a configured subset is still required in full
    p = load_params(_project(tmp_path, gx_dir, subjects=[3, 8]))
    with pytest.raises(ValidationFailed, match=r"column 'subject': missing \[8\]"):
        validate(p)


def test_unknown_labels_are_all_listed(gx_dir: Path) -> None:
    df = _acc_only()
    df.loc[df.index[:150], "label"] = "run"
    df.loc[df.index[150:160], "label"] = "cycle"
    report = validate_recordings(df, project_dir=gx_dir, classes=CLASSES, sampling_rate_hz=50.0)
    assert "on column 'label': examples ['cycle', 'run']" in report.summary()
