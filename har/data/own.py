"""Own recordings (phone/watch exports, docs/own_recordings.md) → the canonical recordings table.

Any sampling rate: each session is interpolated onto a uniform grid at the target rate; labels
take the nearest original sample. Accelerometer-only devices get all-null gyro columns. Every
session passes the unit plausibility check (har.data.units) before it is resampled.

``read_own`` is the reader of the ``own`` dataset (``data.source: own``): every CSV/parquet file
of the folder fetch snapshotted from ``data.own_dir``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from har import contracts
from har.data.ingest import COLUMNS
from har.data.units import Plausibility, check_plausible, unit_scale
from har.errors import DataError

ACC = list(contracts.ACC)
GYRO = list(contracts.GYRO)
REQUIRED = ["timestamp", *ACC]

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


def check_columns(path: Path, columns: list[str] | None = None) -> list[str]:
    """The file's columns (read from its header when not given); DataError naming the file when
    the own-recordings schema's required columns are missing or the gyro triplet is partial."""
    if columns is None:
        if not path.is_file() or path.stat().st_size == 0:
            raise DataError(f"{path}: {'empty file' if path.is_file() else 'file not found'}")
        try:
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                columns = list(pq.read_schema(path).names)
            else:
                columns = list(pd.read_csv(path, nrows=0).columns)
        except Exception as err:  # pyarrow and pandas raise many types for unreadable files
            raise DataError(f"{path}: cannot be read as {path.suffix.lstrip('.') or 'csv'}: {err}") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}; see docs/own_recordings.md")
    partial_gyro = [c for c in GYRO if c in columns]
    if partial_gyro and len(partial_gyro) != 3:
        raise DataError(f"{path}: gyroscope needs all of {GYRO}, found only {partial_gyro}")
    return columns


def _seconds(col: pd.Series, path: Path, time_scale: float) -> tuple[np.ndarray, bool]:
    """Seconds from the first sample, and whether the column held numbers (in data.time_unit)."""
    if pd.api.types.is_numeric_dtype(col):
        raw = col.to_numpy(np.float64)
        return (raw - raw[0]) * time_scale, True
    try:
        ts = pd.to_datetime(col, utc=True)
    except (ValueError, TypeError):
        raise DataError(f"{path}: column 'timestamp' must be numbers (data.time_unit) or ISO "
                        "datetimes") from None
    return (ts - ts.iloc[0]).dt.total_seconds().to_numpy(), False


def _session_to_canonical(g: pd.DataFrame, path: Path, session: str, subject: int, rate: float,
                          acc_unit: str, gyro_unit: str, time_unit: str,
                          plausibility: Plausibility) -> pd.DataFrame:
    t, numeric = _seconds(g["timestamp"], path, unit_scale("time", time_unit))
    if np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise DataError(f"{path}: session {session!r}: timestamps not strictly increasing "
                        f"at row {bad}")
    sensors: dict[str, np.ndarray] = {}
    for cols, kind, unit in ((ACC, "acc", acc_unit), (GYRO, "gyro", gyro_unit)):
        for c in cols:
            if c in g.columns:
                v = pd.to_numeric(g[c], errors="coerce").to_numpy(np.float64)
                if not np.isfinite(v).all():
                    raise DataError(f"{path}: column {c!r} has non-numeric or NaN values at rows "
                                    f"{np.flatnonzero(~np.isfinite(v))[:5].tolist()}")
                sensors[c] = v * unit_scale(kind, unit)
    gyro = np.stack([sensors[c] for c in GYRO], axis=1) if GYRO[0] in sensors else None
    # before resampling: the raw steps tell the time unit, resampled ones would all be 1 / rate
    check_plausible(f"{path}: session {session!r}", np.stack([sensors[c] for c in ACC], axis=1),
                    g["timestamp"].to_numpy(np.float64) if numeric else t, gyro,
                    acc_unit=acc_unit, time_unit=time_unit if numeric else None,
                    gyro_unit=gyro_unit, mode=plausibility)
    grid = np.arange(0.0, t[-1] + 1e-9, 1.0 / rate)
    out: dict[str, object] = {
        "subject": np.full(len(grid), subject, np.int16),
        "session": pd.array([session] * len(grid), dtype="string"),
        "sample": np.arange(len(grid), dtype=np.int32),
        "t": grid,
    }
    for c in (*ACC, *GYRO):
        out[c] = (np.interp(grid, t, sensors[c]).astype(np.float32) if c in sensors
                  else np.full(len(grid), np.nan, np.float32))
    if "label" in g.columns:
        right = np.clip(np.searchsorted(t, grid), 1, max(len(t) - 1, 1))
        left = right - 1
        nearest = np.where(np.abs(t[np.minimum(right, len(t) - 1)] - grid)
                           < np.abs(grid - t[left]), right, left)
        nearest = np.clip(nearest, 0, len(t) - 1)
        labels = g["label"].astype("string").str.strip().replace("", pd.NA)  # empty = unlabelled
        out["label"] = pd.array(labels.to_numpy(object)[nearest], dtype="string")
    else:
        out["label"] = pd.array([None] * len(grid), dtype="string")
    return pd.DataFrame(out)[COLUMNS]


def import_recordings(paths: list[Path], target_rate_hz: float = 50.0, subject: int = 0,
                      acc_unit: str = "g", gyro_unit: str = "rad/s", time_unit: str = "s",
                      plausibility: Plausibility = "error", root: Path | None = None) -> pd.DataFrame:
    """Files in the own-recordings schema → the canonical table at ``target_rate_hz``.

    ``subject`` is the id of files without a subject column; a file without a session column is
    one session named by its stem (or, under ``root``, by its path relative to it without the
    suffix, so ``s1/walk.csv`` and ``s2/walk.csv`` stay apart). The units say how the file is
    written (data.acc_unit, data.gyro_unit, data.time_unit for numeric timestamps); each session
    passes the plausibility check (data.plausibility: error or warn).
    """
    for kind, unit in (("acc", acc_unit), ("gyro", gyro_unit), ("time", time_unit)):
        unit_scale(kind, unit)  # an unknown unit fails before any file is read
    frames = []
    seen: dict[tuple[int, str], Path] = {}
    for path in map(Path, paths):
        df = _read(path)
        check_columns(path, list(df.columns))
        default_session = (path.relative_to(root).with_suffix("").as_posix() if root is not None
                           else path.stem)
        keys = [c for c in ("subject", "session") if c in df.columns]
        groups = df.groupby(keys, sort=False) if keys else [((), df)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            named = dict(zip(keys, key, strict=True))
            sid, session = int(named.get("subject", subject)), str(named.get("session", default_session))
            if (sid, session) in seen:
                raise DataError(f"{path}: session {session!r} of subject {sid} is also in "
                                f"{seen[sid, session]}; give each recording its own session")
            seen[sid, session] = path
            frames.append(_session_to_canonical(g, path, session, sid, target_rate_hz, acc_unit,
                                                gyro_unit, time_unit, plausibility))
    if not frames:
        raise DataError("import: no files given")
    out = pd.concat(frames, ignore_index=True)
    out.attrs["channels"] = channels_present(out)
    return out


def own_files(root: Path) -> list[Path]:
    """The recordings under ``root`` (data.own_dir or its snapshot): every .csv and .parquet file,
    in sub-folders too, hidden ones skipped; DataError when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (data.own_dir: the folder of your recordings)")
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in contracts.OWN_SUFFIXES
                   and not any(part.startswith(".") for part in f.relative_to(root).parts))
    if not files:
        raise DataError(f"{root}: no {' or '.join(contracts.OWN_SUFFIXES)} files "
                        "(see docs/own_recordings.md)")
    return files


def read_own(root: Path, subjects: list[int] | None = None, *, rate_hz: float = 50.0, subject: int = 0,
             acc_unit: str = "g", gyro_unit: str = "rad/s", time_unit: str = "s",
             plausibility: Plausibility = "error") -> pd.DataFrame:
    """The ``own`` dataset's reader: every recording under ``root``, of ``subjects`` if given."""
    df = import_recordings(own_files(root), rate_hz, subject, acc_unit, gyro_unit, time_unit,
                           plausibility, root=Path(root))
    if subjects is not None:
        present = sorted(int(s) for s in df["subject"].unique())
        df = df[df["subject"].isin(subjects)].reset_index(drop=True)
        if df.empty:
            raise DataError(f"{root}: none of data.subjects {subjects} is in the recordings "
                            f"(subjects: {present})")
    return df


def channels_present(df: pd.DataFrame) -> list[str]:
    """Sensor columns holding any data; acc-only devices list no gyro channels."""
    return [c for c in (*ACC, *GYRO) if c in df.columns and df[c].notna().any()]
