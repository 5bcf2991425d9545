"""Inference log for drift monitoring: one JSON line per request in ``<dir>/<YYYY-MM-DD>.jsonl`` (UTC).

Line schema (the drift monitor reads exactly these keys)::

    {"time": "2025-01-01T12:00:00.123456+00:00", "model_version": "3", "endpoint": "/v1/predict",
     "n_windows": 2, "channels": ["acc_x", ...],
     "window_mean": {"acc_x": [m0, m1], ...}, "window_std": {"acc_x": [s0, s1], ...},
     "predicted": {"WALKING": 2}}

Requests only enqueue a small dict; a daemon thread serialises and appends, so the event loop
never waits on the disk. The queue is bounded: when the writer is stuck (a hung disk) records are
dropped and counted instead of growing memory. A day's file rotates to ``<day>.1.jsonl``,
``<day>.2.jsonl``, … past ``max_file_bytes``; files older than ``retention_days`` and the oldest
files past ``max_total_bytes`` are deleted. ``close()`` drains the queue (server shutdown).
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:  # pandas stays out of the serving process: only the reader needs it
    import pandas as pd

log = logging.getLogger(__name__)

KEYS = ("time", "model_version", "endpoint", "n_windows", "channels", "window_mean", "window_std",
        "predicted")
# <YYYY-MM-DD>.jsonl, then <YYYY-MM-DD>.<n>.jsonl after each rotation
LOG_NAME = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})(?:\.(?P<idx>\d+))?\.jsonl$")


def log_files(directory: Path) -> list[Path]:
    """The inference-log files in ``directory``, oldest first (by day, then rotation index)."""
    found = []
    for path in Path(directory).glob("*.jsonl"):
        m = LOG_NAME.match(path.name)
        key = (m["day"], int(m["idx"] or 0)) if m else (path.stem, 0)
        found.append((key, path))
    return [p for _, p in sorted(found)]


def make_record(endpoint: str, model_version: str | None, channels: list[str], windows: np.ndarray,
                predicted: list[str], now: datetime | None = None) -> dict[str, Any]:
    """The log line for one request: per-window, per-channel mean and std of the raw windows."""
    w = np.asarray(windows, dtype=np.float32)
    # (C, n) lists in one round + tolist each: per-channel numpy calls cost more than the model.
    mean = np.round(w.mean(axis=1, dtype=np.float64), 6).T.tolist()
    std = np.round(w.std(axis=1, dtype=np.float64), 6).T.tolist()
    return {
        "time": (now or datetime.now(UTC)).isoformat(),
        "model_version": str(model_version) if model_version is not None else "unversioned",
        "endpoint": endpoint,
        "n_windows": int(len(w)),
        "channels": list(channels),
        "window_mean": dict(zip(channels, mean, strict=True)),
        "window_std": dict(zip(channels, std, strict=True)),
        "predicted": dict(Counter(predicted)),
    }


class InferenceLogWriter:
    """Appends records from a background thread to the day's file (named by the record's UTC date).

    The thread wakes every ``flush_interval_s`` and writes everything queued since, instead of
    waking per record: a per-request wake-up makes the two threads fight over the GIL, which
    measured at ~1 ms added to every request on a busy 2-core box. ``written`` and ``dropped``
    (by reason) count records for the metrics.
    """

    def __init__(self, directory: Path, flush_interval_s: float = 0.5, *, queue_max: int = 10_000,
                 max_file_bytes: int = 64_000_000, max_total_bytes: int = 2_000_000_000,
                 retention_days: int = 30) -> None:
        self.directory = Path(directory)
        self.flush_interval_s = flush_interval_s
        self.queue_max = queue_max
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.retention_days = retention_days
        # deque: append/popleft are atomic, so the event loop and the writer need no lock
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self.written = 0
        self.dropped: Counter[str] = Counter()
        self._closed = False
        self._last_drop_log = 0.0
        self._index: dict[str, int] = {}  # day → rotation index being appended to
        self._retention_day = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inference-log", daemon=True)
        self._thread.start()

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    def write(self, record: dict[str, Any]) -> None:
        if self._closed:
            self._drop("closed", 1)
        elif len(self._queue) >= self.queue_max:
            self._drop("queue_full", 1)
        else:
            self._queue.append(record)

    def _drop(self, reason: str, n: int) -> None:
        self.dropped[reason] += n
        now = time.monotonic()
        if now - self._last_drop_log > 60:  # one line a minute, however many are dropped
            self._last_drop_log = now
            log.warning("inference log: %d record(s) dropped (%s); %s dropped so far", n, reason,
                        dict(self.dropped))

    def _drain(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self._queue.popleft())
            except IndexError:
                break
        if not batch:
            return
        try:
            self._append(batch)
            self.written += len(batch)
        except Exception as err:  # a full disk must not kill serving; the monitor sees the gap
            self._drop("write_error", len(batch))
            log.error("inference log write failed (%d records lost): %s", len(batch), err)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self._drain()
        self._drain()

    def _path(self, day: str, idx: int) -> Path:
        return self.directory / (f"{day}.jsonl" if idx == 0 else f"{day}.{idx}.jsonl")

    def _latest_index(self, day: str) -> int:
        idx = [int(m["idx"] or 0) for p in self.directory.glob(f"{day}*.jsonl")
               if (m := LOG_NAME.match(p.name)) and m["day"] == day]
        return max(idx, default=0)

    def _append(self, records: list[dict[str, Any]]) -> None:
        by_day: dict[str, list[bytes]] = {}
        for r in records:
            by_day.setdefault(r["time"][:10], []).append(orjson.dumps(r) + b"\n")
        self.directory.mkdir(parents=True, exist_ok=True)
        for day, lines in by_day.items():
            data = b"".join(lines)
            if day not in self._index:
                self._index[day] = self._latest_index(day)
            path = self._path(day, self._index[day])
            size = path.stat().st_size if path.exists() else 0
            if size and size + len(data) > self.max_file_bytes:
                # another worker process may have rotated already: continue after its newest file
                self._index[day] = max(self._index[day] + 1, self._latest_index(day))
                path = self._path(day, self._index[day])
                if path.exists() and path.stat().st_size + len(data) > self.max_file_bytes:
                    self._index[day] += 1
                    path = self._path(day, self._index[day])
                self._retention_day = ""  # a new file: check the totals now
            # O_APPEND: whole-line writes from several worker processes do not interleave
            with open(path, "ab") as fh:
                fh.write(data)
            if self._retention_day != day:
                self._retention_day = day
                self.enforce_retention(keep=path)

    def enforce_retention(self, keep: Path | None = None, today: datetime | None = None) -> list[Path]:
        """Delete log files older than ``retention_days``, then the oldest until the folder holds at
        most ``max_total_bytes`` (never ``keep``, the file being written). Returns the deleted."""
        cutoff = ((today or datetime.now(UTC)) - timedelta(days=self.retention_days)).strftime("%Y-%m-%d")
        deleted = []
        files = []
        for path in log_files(self.directory):
            m = LOG_NAME.match(path.name)
            if m is None:
                continue  # not ours: leave it
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # removed by another worker meanwhile
                continue
            if m["day"] < cutoff and path != keep:
                path.unlink(missing_ok=True)
                deleted.append(path)
            else:
                files.append((path, size))
        total = sum(s for _, s in files)
        for path, size in files:  # oldest first
            if total <= self.max_total_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            deleted.append(path)
            total -= size
        if deleted:
            log.info("inference log retention: deleted %s", [p.name for p in deleted])
        return deleted

    def close(self, timeout: float = 10.0) -> None:
        """Flush everything queued so far and stop the thread; records that arrive later, or that a
        stuck writer could not write within ``timeout``, are counted as dropped and logged."""
        self._closed = True
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            lost = len(self._queue)
            self._queue.clear()
            self.dropped["shutdown"] += lost
            log.error("inference log: writer stuck at shutdown; %d queued record(s) not written", lost)
        elif self.dropped:
            log.warning("inference log closed: %d written, dropped %s", self.written, dict(self.dropped))


def read_inference_log(directory: Path) -> pd.DataFrame:
    """All ``*.jsonl`` logs in ``directory`` → one row per window.

    Columns: ``time`` (UTC datetime), ``model_version``, ``endpoint`` and per channel
    ``<ch>_mean`` and ``<ch>_std``. Channels missing from a request are NaN. Unreadable lines
    are skipped with a warning.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for path in log_files(Path(directory)):  # rotated files (<day>.<n>.jsonl) included
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                n_win = int(rec["n_windows"])
                means, stds = rec["window_mean"], rec["window_std"]
                channels = list(rec["channels"])
                cols = {f"{ch}_mean": means[ch] for ch in channels}
                cols.update({f"{ch}_std": stds[ch] for ch in channels})
                if any(len(v) != n_win for v in cols.values()):
                    raise ValueError("per-window lists disagree with n_windows")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("%s:%d: not an inference log record, skipped", path, n)
                continue
            for i in range(n_win):
                row: dict[str, Any] = {"time": rec["time"], "model_version": rec.get("model_version"),
                                       "endpoint": rec.get("endpoint")}
                row.update({k: v[i] for k, v in cols.items()})
                rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["time", "model_version", "endpoint"])
    df = pd.DataFrame(rows)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    return df
