"""Raw HAPT files → the canonical recordings table (one parquet in data/interim/).

labels.txt indexing: start/end are 1-based and inclusive (MATLAB convention). Evidence: cutting
each segment into the official 128-sample / 64-step windows with end - start + 1 samples gives
exactly the 10,929 windows of Train/ + Test/, matching all 349 (subject, activity) counts; reading
end as exclusive gives 10,908 (330 of 349 match). Every end is ≤ its file's row count, so the
indices are 1-based. tests/data/test_ingest.py checks this on the mirror.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from har.contracts import (
    META_CHANNELS,
    META_RATE,
    META_SOURCE,
    META_UNITS,
    RECORDING_COLUMNS,
    SENSOR_CHANNELS,
    UNITS,
)
from har.errors import DataError
from har.io import atomic_path

SENSOR_COLUMNS = list(SENSOR_CHANNELS)
COLUMNS = list(RECORDING_COLUMNS)
_ACC = re.compile(r"acc_exp(\d+)_user(\d+)\.txt$")


def read_matrix(path: Path, n_cols: int) -> np.ndarray:
    """Read a whitespace-separated numeric file, naming the file and line on bad content."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, expected {n_cols} numeric columns per row")
    rows = path.read_text().split("\n")
    for n, line in enumerate(rows, 1):
        if line.strip() and len(line.split()) != n_cols:
            raise DataError(f"{path}:{n}: expected {n_cols} columns, got {len(line.split())}")
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataError(f"{path}: non-numeric value: {err}") from None
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        raise DataError(f"{path}:{int(np.argmax(bad)) + 1}: NaN or infinite value")
    return data


def read_activity_labels(root: Path) -> dict[int, str]:
    path = root / "activity_labels.txt"
    out: dict[int, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, name = line.split(maxsplit=1)
            out[int(key)] = name.strip()
    return out


def read_hapt(root: Path, subjects: list[int] | None = None) -> pd.DataFrame:
    raw = root / "RawData"
    activities = read_activity_labels(root)
    labels = read_matrix(raw / "labels.txt", 5).astype(np.int64)
    frames: list[pd.DataFrame] = []
    acc_files = sorted(raw.glob("acc_exp*_user*.txt"))
    if not acc_files:
        raise DataError(f"{raw}: no acc_expXX_userYY.txt files")
    for acc_path in acc_files:
        m = _ACC.search(acc_path.name)
        assert m is not None
        exp, user = int(m.group(1)), int(m.group(2))
        if subjects is not None and user not in subjects:
            continue
        gyro_path = acc_path.with_name(acc_path.name.replace("acc_", "gyro_"))
        if not gyro_path.exists():
            raise DataError(f"{acc_path}: has no matching gyroscope file {gyro_path.name}")
        acc, gyro = read_matrix(acc_path, 3), read_matrix(gyro_path, 3)
        if len(acc) != len(gyro):
            raise DataError(f"{gyro_path}: {len(gyro)} rows, expected {len(acc)} like "
                            f"{acc_path.name}")
        n = len(acc)
        label = np.full(n, None, dtype=object)
        for _, _, act, start, end in labels[(labels[:, 0] == exp) & (labels[:, 1] == user)]:
            if act not in activities:
                raise DataError(f"{raw / 'labels.txt'}: unknown activity id {act} for exp {exp}"
                                f" (known: {sorted(activities)})")
            if start < 1 or end > n or start > end:
                raise DataError(f"{raw / 'labels.txt'}: segment {start}-{end} of exp {exp} "
                                f"outside {acc_path.name} (1..{n})")
            label[start - 1:end] = activities[act]  # 1-based inclusive
        frames.append(pd.DataFrame({
            "subject": np.full(n, user, np.int16),
            "session": pd.array([f"exp{exp:02d}"] * n, dtype="string"),
            "sample": np.arange(n, dtype=np.int32),
            "t": np.arange(n, dtype=np.float64) / 50.0,
            **{c: acc[:, i].astype(np.float32) for i, c in enumerate(SENSOR_COLUMNS[:3])},
            **{c: gyro[:, i].astype(np.float32) for i, c in enumerate(SENSOR_COLUMNS[3:])},
            "label": pd.array(label, dtype="string"),
        }))
    if not frames:
        raise DataError(f"{raw}: no recordings for subjects {subjects}")
    return pd.concat(frames, ignore_index=True)


def write_recordings(df: pd.DataFrame, path: Path, sampling_rate_hz: float, source: str) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"recordings for {path}: missing columns {missing}")
    table = pa.Table.from_pandas(df[COLUMNS], preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.update({META_RATE.encode(): str(sampling_rate_hz).encode(),
                 META_UNITS.encode(): json.dumps(UNITS).encode(), META_SOURCE.encode(): source.encode(),
                 META_CHANNELS.encode(): json.dumps([c for c in SENSOR_COLUMNS
                                              if df[c].notna().any()]).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def read_recordings(path: Path) -> tuple[pd.DataFrame, dict]:
    if not path.is_file():
        raise DataError(f"{path}: recordings parquet not found (run `har data ingest`)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{path}: not a readable parquet file: {err}") from None
    raw = table.schema.metadata or {}
    if META_RATE.encode() not in raw:
        raise DataError(f"{path}: no {META_RATE} in the parquet metadata")
    meta = {"sampling_rate_hz": float(raw[META_RATE.encode()]),
            "units": json.loads(raw.get(META_UNITS.encode(), b"{}")),
            "source": raw.get(META_SOURCE.encode(), b"").decode(),
            "channels": json.loads(raw.get(META_CHANNELS.encode(), json.dumps(SENSOR_COLUMNS).encode()))}
    return table.to_pandas(), meta
