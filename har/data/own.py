"""Own recordings (phone/watch exports, docs/own_recordings.md) → the canonical recordings table.

Any sampling rate: each session is interpolated onto a uniform grid at the target rate; labels
take the nearest original sample. Accelerometer-only devices get all-null gyro columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from har import contracts
from har.data.ingest import COLUMNS
from har.errors import DataError

ACC = list(contracts.ACC)
GYRO = list(contracts.GYRO)
STANDARD_GRAVITY = 9.80665
ACC_SCALE = {"g": 1.0, "m/s2": 1.0 / STANDARD_GRAVITY}
GYRO_SCALE = {"rad/s": 1.0, "deg/s": np.pi / 180.0}


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:  # pandas raises many types for unreadable files
        raise DataError(f"{path}: cannot be read as {path.suffix.lstrip('.') or 'csv'}: {err}") from None
    if df.empty:
        raise DataError(f"{path}: no rows")
    return df


def _seconds(col: pd.Series, path: Path) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(np.float64)
    try:
        ts = pd.to_datetime(col, utc=True)
    except (ValueError, TypeError):
        raise DataError(f"{path}: column 'timestamp' must be seconds or ISO datetimes") from None
    return (ts - ts.iloc[0]).dt.total_seconds().to_numpy()


def _session_to_canonical(g: pd.DataFrame, path: Path, session: str, subject: int,
                          rate: float, acc_scale: float, gyro_scale: float) -> pd.DataFrame:
    t = _seconds(g["timestamp"], path)
    if np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise DataError(f"{path}: session {session!r}: timestamps not strictly increasing "
                        f"at row {bad}")
    t = t - t[0]
    grid = np.arange(0.0, t[-1] + 1e-9, 1.0 / rate)
    out: dict[str, object] = {
        "subject": np.full(len(grid), subject, np.int16),
        "session": pd.array([session] * len(grid), dtype="string"),
        "sample": np.arange(len(grid), dtype=np.int32),
        "t": grid,
    }
    for cols, scale in ((ACC, acc_scale), (GYRO, gyro_scale)):
        for c in cols:
            if c in g.columns:
                v = pd.to_numeric(g[c], errors="coerce").to_numpy(np.float64)
                if not np.isfinite(v).all():
                    raise DataError(f"{path}: column {c!r} has non-numeric or NaN values at rows "
                                    f"{np.flatnonzero(~np.isfinite(v))[:5].tolist()}")
                out[c] = (np.interp(grid, t, v) * scale).astype(np.float32)
            else:
                out[c] = np.full(len(grid), np.nan, np.float32)
    if "label" in g.columns:
        right = np.clip(np.searchsorted(t, grid), 1, max(len(t) - 1, 1))
        left = right - 1
        nearest = np.where(np.abs(t[np.minimum(right, len(t) - 1)] - grid)
                           < np.abs(grid - t[left]), right, left)
        nearest = np.clip(nearest, 0, len(t) - 1)
        out["label"] = pd.array(g["label"].to_numpy(object)[nearest], dtype="string")
    else:
        out["label"] = pd.array([None] * len(grid), dtype="string")
    return pd.DataFrame(out)[COLUMNS]


def import_recordings(paths: list[Path], target_rate_hz: float = 50.0, subject: int = 0,
                      acc_unit: str = "g", gyro_unit: str = "rad/s") -> pd.DataFrame:
    if acc_unit not in ACC_SCALE:
        raise DataError(f"acc_unit {acc_unit!r}: expected one of {list(ACC_SCALE)}")
    if gyro_unit not in GYRO_SCALE:
        raise DataError(f"gyro_unit {gyro_unit!r}: expected one of {list(GYRO_SCALE)}")
    frames = []
    for path in map(Path, paths):
        df = _read(path)
        missing = [c for c in ("timestamp", *ACC) if c not in df.columns]
        if missing:
            raise DataError(f"{path}: missing required column(s) {missing}; "
                            "see docs/own_recordings.md")
        partial_gyro = [c for c in GYRO if c in df.columns]
        if partial_gyro and len(partial_gyro) != 3:
            raise DataError(f"{path}: gyroscope needs all of {GYRO}, found only {partial_gyro}")
        keys = [c for c in ("subject", "session") if c in df.columns]
        groups = df.groupby(keys, sort=False) if keys else [((), df)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            named = dict(zip(keys, key, strict=True))
            frames.append(_session_to_canonical(
                g, path, str(named.get("session", path.stem)), int(named.get("subject", subject)),
                target_rate_hz, ACC_SCALE[acc_unit], GYRO_SCALE[gyro_unit]))
    if not frames:
        raise DataError("import: no files given")
    out = pd.concat(frames, ignore_index=True)
    out.attrs["channels"] = channels_present(out)
    return out


def channels_present(df: pd.DataFrame) -> list[str]:
    """Sensor columns holding any data; acc-only devices list no gyro channels."""
    return [c for c in (*ACC, *GYRO) if c in df.columns and df[c].notna().any()]
