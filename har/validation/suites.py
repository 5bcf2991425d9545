"""Expectation suites built from explicit params (GX 1.x core expectations)."""

from __future__ import annotations

import os
from collections.abc import Sequence

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations.expectations as gxe

import great_expectations as gx
from har.contracts import ACC, GYRO, RECORDING_COLUMNS, SENSOR_CHANNELS


def expected_channels(present: Sequence[str]) -> list[str]:
    """The sensor channels a recordings table must hold in full, given those with any data: the
    accelerometer always, the gyroscope when any of its columns has data (so a gyro that is half
    null, or one axis of it, fails instead of silently dropping out)."""
    return [*ACC, *(GYRO if any(c in present for c in GYRO) else ())]


def recordings_suite(classes: list[str], acc_abs_max_g: float, gyro_abs_max_rad_s: float,
                     subjects: list[int] | None, *, sampling_rate_hz: float = 50.0,
                     rate_tolerance: float = 0.01,
                     channels: Sequence[str] = SENSOR_CHANNELS) -> gx.ExpectationSuite:
    """Suite for the recordings frame plus derived per-session `sample_step` and `dt` columns.

    ``channels`` must be complete and in range; the other sensor columns must be empty (an
    accelerometer-only device), see ``expected_channels``."""
    dt = 1.0 / sampling_rate_hz
    ex: list = [gxe.ExpectTableColumnsToMatchSet(column_set=[*RECORDING_COLUMNS, "sample_step",
                                                             "dt"], exact_match=True)]
    for c in ("subject", "sample"):
        ex.append(gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=[
            "int16", "int32", "int64", "Int16", "Int32", "Int64"]))
    for c in ("t", *SENSOR_CHANNELS):
        ex.append(gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=[
            "float32", "float64", "Float32", "Float64"]))
    limits = {**dict.fromkeys(ACC, acc_abs_max_g), **dict.fromkeys(GYRO, gyro_abs_max_rad_s)}
    for c in SENSOR_CHANNELS:
        if c not in channels:
            ex.append(gxe.ExpectColumnValuesToBeNull(column=c))
            continue
        ex.append(gxe.ExpectColumnValuesToNotBeNull(column=c))
        ex.append(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=-limits[c],
                                                    max_value=limits[c]))
    ex.append(gxe.ExpectColumnValuesToNotBeNull(column="t"))
    # Derived per-session columns (see run._with_derived): first row of a session is null.
    ex.append(gxe.ExpectColumnValuesToBeBetween(column="sample_step", min_value=1, max_value=1))
    ex.append(gxe.ExpectColumnValuesToBeBetween(column="dt", min_value=dt * (1 - rate_tolerance),
                                                max_value=dt * (1 + rate_tolerance)))
    ex.append(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(classes)))
    if subjects:
        ex.append(gxe.ExpectColumnDistinctValuesToContainSet(column="subject",
                                                             value_set=list(subjects)))
    return gx.ExpectationSuite(name="recordings", expectations=ex)


def windows_suite(classes: list[str], window_len: int, n_channels: int) -> gx.ExpectationSuite:
    """Validates a one-row-per-window summary frame of ONE split (run once per split).

    Columns: split, subject, label, n_samples, n_channels, finite, splits_of_subject (how many
    splits list the window's subject; computed in pandas, must be exactly 1).
    """
    ex: list = [
        gxe.ExpectColumnValuesToBeBetween(column="n_samples", min_value=window_len,
                                          max_value=window_len),
        gxe.ExpectColumnValuesToBeBetween(column="n_channels", min_value=n_channels,
                                          max_value=n_channels),
        gxe.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
        gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=list(classes)),
        gxe.ExpectColumnValuesToBeBetween(column="splits_of_subject", min_value=1, max_value=1),
    ]
    return gx.ExpectationSuite(name="windows", expectations=ex)
