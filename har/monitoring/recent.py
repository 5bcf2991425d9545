"""Recent model inputs as per-window features: from the serving inference log or from recordings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from har.errors import DataError
from har.monitoring.reference import window_features


def from_inference_log(directory: Path, since_hours: float | None = None) -> pd.DataFrame:
    """Rows of ``<ch>_mean``/``<ch>_std`` from the serving log (``*.jsonl`` in ``directory``)."""
    from har.serving.inference_log import read_inference_log

    df = read_inference_log(Path(directory))
    if since_hours is not None and len(df) and "time" in df.columns:
        df = df[df["time"] >= datetime.now(UTC) - timedelta(hours=since_hours)]
    return df.reset_index(drop=True)


def from_recordings(paths: list[Path], p: Any) -> pd.DataFrame:
    """Canonical recordings parquet files → windows with the preprocess params → features."""
    from har.data.ingest import read_recordings
    from har.data.own import channels_present
    from har.preprocess.signal import resample
    from har.preprocess.windows import sliding_windows

    pp = p.preprocess
    win = int(round(pp.window_s * pp.target_rate_hz))
    step = max(1, int(round(win * (1 - pp.overlap))))
    frames: list[pd.DataFrame] = []
    for path in paths:
        df, meta = read_recordings(path)
        channels = channels_present(df)
        rate = float(meta["sampling_rate_hz"])
        df = df.sort_values(["subject", "session", "sample"], kind="stable")
        # Unlabelled recordings are fine here: drift looks at the inputs, never at labels.
        for _, sess in df.groupby(["subject", "session"], sort=False):
            x = sess[channels].to_numpy("float64")
            if abs(rate - pp.target_rate_hz) > 1e-9:
                x = resample(x, rate, pp.target_rate_hz)
            xw = sliding_windows(x, win, step)
            if len(xw):
                frames.append(window_features(xw, channels))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def load_recent(path: Path, p: Any, since_hours: float | None = None) -> pd.DataFrame:
    """A folder of ``*.jsonl`` inference logs, a folder of recordings parquet, or one such file."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".jsonl":
            df = from_inference_log(path.parent, since_hours)
            return df  # the reader takes a folder; one-file folders are the common case
        return from_recordings([path], p)
    if path.is_dir():
        if any(path.glob("*.jsonl")):
            return from_inference_log(path, since_hours)
        parquet = sorted(path.glob("*.parquet"))
        if parquet:
            return from_recordings(parquet, p)
        return pd.DataFrame()
    raise DataError(f"{path}: no recent inputs here (expected an inference log folder or "
                    "recordings parquet)")
