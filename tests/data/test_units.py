"""The unit plausibility check (issue 14): a wrong unit is an error naming the likely one, in
`har data import` and the own-recordings reader alike (both go through import_recordings)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from har.config import AccUnit, GyroUnit, TimeUnit
from har.data.own import import_recordings
from har.data.units import (
    ACC_SCALE,
    GYRO_SCALE,
    STANDARD_GRAVITY,
    TIME_SCALE,
    check_plausible,
    plausibility_problems,
)
from har.errors import DataError


def _lying(n: int = 1500, rate: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """LAYING as HAPT's waist phone sees it: gravity on one axis, a little noise; seconds."""
    rng = np.random.default_rng(0)
    acc = np.column_stack([rng.normal(0, 0.01, n), rng.normal(0, 0.01, n), rng.normal(1, 0.01, n)])
    return acc, np.arange(n) / rate


def test_the_units_params_offer_are_the_units_the_code_converts() -> None:
    assert set(get_args(AccUnit)) == set(ACC_SCALE)
    assert set(get_args(GyroUnit)) == set(GYRO_SCALE)
    assert set(get_args(TimeUnit)) == set(TIME_SCALE)


def test_plausible_recording_has_no_problems() -> None:
    acc, t = _lying()
    gyro = np.random.default_rng(1).normal(0, 0.5, (len(t), 3))
    assert plausibility_problems(acc, t, gyro) == []


@pytest.mark.parametrize(
    ("scale", "read_as", "message"),
    [
        (STANDARD_GRAVITY, "g", r"median \|acc\| is 9.81 g, expected about 1 g .*look like m/s2; "
                                r"set data.acc_unit: m/s2 \(`--acc-unit m/s2`\)"),
        (1.0, "m/s2", r"median \|acc\| is 1 m/s2 = 0.102 g.*look like g; set data.acc_unit: g"),
        (1000.0, "g", r"is 1e\+03 g.*look like mg; set data.acc_unit: mg"),
    ],
    ids=["m/s2 read as g", "g read as m/s2", "mg read as g"],
)
def test_wrong_acc_unit_names_the_likely_one(scale: float, read_as: str, message: str) -> None:
    acc, t = _lying()
    converted = acc * scale * ACC_SCALE[read_as]  # what the reader makes of the file's numbers
    with pytest.raises(DataError, match=message):
        check_plausible("f.csv", converted, t, acc_unit=read_as)


def test_gravity_removed_is_named() -> None:
    acc, t = _lying()
    (problem,) = plausibility_problems(acc - [0, 0, 1], t)
    assert "gravity looks removed" in problem


@pytest.mark.parametrize(
    ("factor", "read_as", "likely", "words"),
    [(1e3, "s", "ms", "milliseconds"), (1e9, "s", "ns", "nanoseconds"), (1.0, "ms", "s", "seconds")],
)
def test_wrong_time_unit_names_the_likely_one(factor: float, read_as: str, likely: str,
                                               words: str) -> None:
    acc, t = _lying()
    (problem,) = plausibility_problems(acc, t * factor, time_unit=read_as)
    assert f"they look like {words}; set data.time_unit: {likely}" in problem


def test_deg_per_s_read_as_rad_per_s() -> None:
    acc, t = _lying()
    gyro = np.degrees(np.random.default_rng(2).normal(0, 2.0, (len(t), 3)))  # a walk's turns, deg/s
    (problem,) = plausibility_problems(acc, t, gyro)
    assert "look like deg/s; set data.gyro_unit: deg/s" in problem
    assert plausibility_problems(acc, t, np.radians(gyro), gyro_unit="deg/s") == []


def test_warn_mode_logs_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    acc, t = _lying()
    with caplog.at_level(logging.WARNING, logger="har.data.units"):
        problems = check_plausible("f.csv", acc * STANDARD_GRAVITY, t, mode="warn")
    assert len(problems) == 1 and "f.csv: median |acc| is 9.81" in caplog.text


def _export(path: Path, seconds: float = 30.0, rate: float = 50.0) -> None:
    """A 30 s LAYING recording as a phone app exports it: epoch milliseconds, m/s²."""
    acc, _ = _lying(int(seconds * rate), rate)
    t_ms = 1.7e12 + np.arange(len(acc)) * 1000 / rate
    pd.DataFrame({"timestamp": t_ms, **{c: acc[:, i] * STANDARD_GRAVITY
                                        for i, c in enumerate(["acc_x", "acc_y", "acc_z"])},
                  "label": "LAYING"}).to_csv(path, index=False)


def test_import_refuses_wrong_units_naming_file_session_and_fix(tmp_path: Path) -> None:
    _export(tmp_path / "lying.csv")
    with pytest.raises(DataError) as err:
        import_recordings([tmp_path / "lying.csv"], time_unit="ms")  # acc_unit g: wrong
    assert "lying.csv: session 'lying': implausible units" in str(err.value)
    assert "set data.acc_unit: m/s2" in str(err.value)
    # the example: 30 s of millisecond timestamps read as seconds would be 29,979 s
    with pytest.raises(DataError, match="they look like milliseconds; set data.time_unit: ms"):
        import_recordings([tmp_path / "lying.csv"], acc_unit="m/s2")
    df = import_recordings([tmp_path / "lying.csv"], acc_unit="m/s2", time_unit="ms")
    assert df["t"].iloc[-1] == pytest.approx(29.98)
    assert np.median(np.linalg.norm(df[["acc_x", "acc_y", "acc_z"]], axis=1)) == pytest.approx(1, abs=0.01)


def test_import_with_warn_keeps_the_data(tmp_path: Path) -> None:
    _export(tmp_path / "lying.csv")
    df = import_recordings([tmp_path / "lying.csv"], time_unit="ms", plausibility="warn")
    assert df["acc_z"].median() == pytest.approx(STANDARD_GRAVITY, abs=0.1)


def test_unknown_unit_names_the_key(tmp_path: Path) -> None:
    _export(tmp_path / "lying.csv")
    with pytest.raises(DataError, match=r"data.time_unit 'min': expected one of \['s', 'ms'"):
        import_recordings([tmp_path / "lying.csv"], time_unit="min")
