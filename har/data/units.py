"""Units of recordings, and the plausibility check that catches a wrong one (issue 14).

A recording read in the wrong unit still looks like numbers: m/s² read as g has a lying subject
accelerate at 9.8 g (the model answers WALKING_DOWNSTAIRS with 1.00 confidence), millisecond
timestamps read as seconds stretch 30 s into 8 hours. Facts true of every body-worn IMU catch
both: gravity keeps the median |acc| near 1 g, devices sample between 1 Hz and 2 kHz, and bodies
turn slower than 25 rad/s. ``check_plausible`` is the one check; `har data import`, the ingest
of own recordings and `har predict` all run it (through ``har.data.own.import_recordings``).
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np

from har.errors import DataError

log = logging.getLogger(__name__)

STANDARD_GRAVITY = 9.80665
# factor from the file's unit to the canonical one (contracts.UNITS: g, rad/s, s)
ACC_SCALE = {"g": 1.0, "m/s2": 1.0 / STANDARD_GRAVITY, "mg": 1e-3}
GYRO_SCALE = {"rad/s": 1.0, "deg/s": math.pi / 180.0}
TIME_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
TIME_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

GRAVITY_BAND_G = (0.5, 2.0)  # median |acc|: ~1 g at rest and in walking, running, cycling
RATE_BAND_HZ = (1.0, 2000.0)  # every phone, watch and IMU logger samples inside (as the API does)
GYRO_P99_MAX_RAD_S = 25.0  # ~1400 deg/s: no body part turns that fast for 1 % of a recording
TYPICAL_RATE_HZ = 50.0  # the tie-break when several time units would give a plausible rate

Plausibility = Literal["error", "warn"]


def unit_scale(kind: str, unit: str) -> float:
    """The factor to the canonical unit; DataError naming the data.<kind>_unit choices."""
    table = {"acc": ACC_SCALE, "gyro": GYRO_SCALE, "time": TIME_SCALE}[kind]
    if unit not in table:
        raise DataError(f"data.{kind}_unit {unit!r}: expected one of {list(table)}")
    return table[unit]


def _fix(key: str, unit: str) -> str:
    return f"set data.{key}: {unit} (`--{key.replace('_', '-')} {unit}`)"


def _acc_problem(acc_g: np.ndarray, acc_unit: str) -> str | None:
    mag = np.linalg.norm(acc_g, axis=1)
    mag = mag[np.isfinite(mag)]
    if not len(mag):
        return None
    median = float(np.median(mag))
    lo, hi = GRAVITY_BAND_G
    if lo <= median <= hi:
        return None
    raw = median / ACC_SCALE[acc_unit]  # the number as written in the file
    what = f"median |acc| is {raw:.3g} {acc_unit}" + ("" if acc_unit == "g" else f" = {median:.3g} g")
    what += ", expected about 1 g (gravity)"
    fits = [u for u, s in ACC_SCALE.items() if u != acc_unit and lo <= raw * s <= hi]
    if fits:
        return f"{what}: the values look like {fits[0]}; {_fix('acc_unit', fits[0])}"
    if median < lo:
        return (f"{what}: gravity looks removed (a 'linear acceleration' export?); the models need "
                "the total acceleration, gravity included")
    return f"{what}: check the accelerometer's unit and range"


def _time_problem(t_raw: np.ndarray, time_unit: str | None) -> str | None:
    steps = np.diff(t_raw)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if not len(steps):
        return None
    step_raw = float(np.median(steps))
    scale = TIME_SCALE[time_unit] if time_unit else 1.0
    rate = 1.0 / (step_raw * scale)
    lo, hi = RATE_BAND_HZ
    if lo <= rate <= hi:
        return None
    unit = time_unit or "s"
    what = (f"timestamps step by a median of {step_raw:.4g} {unit}, a rate of {rate:.4g} Hz "
            f"(expected {lo:g}-{hi:g} Hz)")
    if time_unit is None:  # datetimes: the unit is known, the clock is wrong
        return f"{what}: check the device's clock"
    fits = [u for u, s in TIME_SCALE.items() if lo <= 1.0 / (step_raw * s) <= hi]
    if fits:
        best = min(fits, key=lambda u: abs(math.log(1.0 / (step_raw * TIME_SCALE[u]) / TYPICAL_RATE_HZ)))
        return f"{what}: they look like {TIME_WORDS[best]}; {_fix('time_unit', best)}"
    return f"{what}: check the timestamp column"


def _gyro_problem(gyro_rad_s: np.ndarray, gyro_unit: str) -> str | None:
    mag = np.linalg.norm(gyro_rad_s, axis=1)
    mag = mag[np.isfinite(mag)]
    if not len(mag) or gyro_unit != "rad/s":
        return None
    p99 = float(np.percentile(mag, 99))
    if p99 <= GYRO_P99_MAX_RAD_S:
        return None
    return (f"99th percentile |gyro| is {p99:.3g} rad/s, faster than a body turns "
            f"({GYRO_P99_MAX_RAD_S:g} rad/s): the values look like deg/s; {_fix('gyro_unit', 'deg/s')}")


def plausibility_problems(acc_g: np.ndarray, t_raw: np.ndarray | None = None,
                          gyro_rad_s: np.ndarray | None = None, *, acc_unit: str = "g",
                          time_unit: str | None = "s", gyro_unit: str = "rad/s") -> list[str]:
    """What is implausible about one session, each with the likely unit when one fits.

    ``acc_g`` (N, 3) and ``gyro_rad_s`` (N, 3) are already converted from the file's units;
    ``t_raw`` is the timestamp column as written, in ``time_unit`` (None: datetimes, exact).
    """
    found = [_acc_problem(np.asarray(acc_g, np.float64), acc_unit)]
    if t_raw is not None:
        found.append(_time_problem(np.asarray(t_raw, np.float64), time_unit))
    if gyro_rad_s is not None:
        found.append(_gyro_problem(np.asarray(gyro_rad_s, np.float64), gyro_unit))
    return [f for f in found if f]


def check_plausible(where: str, acc_g: np.ndarray, t_raw: np.ndarray | None = None,
                    gyro_rad_s: np.ndarray | None = None, *, acc_unit: str = "g",
                    time_unit: str | None = "s", gyro_unit: str = "rad/s",
                    mode: Plausibility = "error") -> list[str]:
    """``plausibility_problems`` as a DataError naming ``where`` (mode ``error``, data.plausibility)
    or as warnings (``warn``); returns the problems."""
    problems = plausibility_problems(acc_g, t_raw, gyro_rad_s, acc_unit=acc_unit, time_unit=time_unit,
                                     gyro_unit=gyro_unit)
    if problems and mode == "error":
        raise DataError(f"{where}: implausible units: " + "; ".join(problems)
                        + " (data.plausibility: warn accepts it anyway)")
    for problem in problems:
        log.warning("%s: %s", where, problem)
    return problems
