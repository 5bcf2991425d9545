"""``har predict``: recordings on disk → per-session activity timelines (+ a PNG per session).

Input is either the canonical recordings parquet (``har.data.ingest.read_recordings``: it has the
``har.sampling_rate_hz`` metadata) or any file in the own-recordings schema
(``har.data.own.import_recordings``, interpolated straight onto the model rate). The timeline
comes from ``har.serving.timeline.predict_timeline``, the same code the HTTP endpoint uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from har.errors import DataError
from har.io import atomic_path
from har.serving.model import LoadedModel
from har.serving.timeline import Timeline, label_agreement, predict_timeline

if TYPE_CHECKING:
    from har.data.units import Plausibility

log = logging.getLogger(__name__)

TIMELINE_COLUMNS = ["file", "subject", "session", "start_s", "end_s", "activity", "confidence"]


@dataclass
class Session:
    file: str
    subject: int
    session: str
    rate_hz: float
    t: np.ndarray  # (N,) seconds
    channels: list[str]  # the model's channel order
    values: np.ndarray  # (N, C) in that order
    labels: np.ndarray | None  # (N,) object, None/NA where unlabelled


@dataclass
class PredictResult:
    timeline: pd.DataFrame
    plots: list[Path] = field(default_factory=list)
    agreement: dict[str, float] = field(default_factory=dict)  # "subject/session" → fraction


def _is_canonical(path: Path) -> bool:
    if path.suffix != ".parquet":
        return False
    import pyarrow.parquet as pq

    try:
        return b"har.sampling_rate_hz" in (pq.read_schema(path).metadata or {})
    except Exception:  # unreadable parquet: let the own-schema reader produce the error message
        return False


def read_sessions(path: Path, channels: list[str], rate_hz: float, subject: int = 0,
                  acc_unit: str = "g", gyro_unit: str = "rad/s", time_unit: str = "s",
                  plausibility: Plausibility = "error") -> Iterator[Session]:
    """Sessions of ``path`` with ``channels`` in that order; DataError if a channel has no data
    or (own-schema files) the units are implausible (har.data.units)."""
    from har.data.ingest import read_recordings
    from har.data.own import import_recordings

    path = Path(path)
    if _is_canonical(path):
        df, meta = read_recordings(path)
        rate = float(meta["sampling_rate_hz"])
    else:
        df = import_recordings([path], target_rate_hz=rate_hz, subject=subject, acc_unit=acc_unit,
                               gyro_unit=gyro_unit, time_unit=time_unit,
                               plausibility=plausibility)
        rate = rate_hz
    missing = [c for c in channels if c not in df.columns or df[c].isna().all()]
    if missing:
        raise DataError(f"{path}: the model needs channels {missing}, which the file lacks "
                        f"(model channels: {channels})")
    sort = [c for c in ("subject", "session", "sample") if c in df.columns]
    df = df.sort_values(sort, kind="stable")
    for (subj, sess), g in df.groupby(["subject", "session"], sort=False, observed=True):
        values = g[channels].to_numpy(np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"{path}: session {sess!r} has NaN/infinite values in {channels}")
        t = g["t"].to_numpy(np.float64) if "t" in g else np.arange(len(g)) / rate
        labels = g["label"].to_numpy(object) if "label" in g else None
        yield Session(file=str(path), subject=int(subj), session=str(sess), rate_hz=rate, t=t,
                      channels=list(channels), values=values, labels=labels)


def plot_session(session: Session, tl: Timeline, classes: list[str], path: Path,
                 agreement: float | None = None) -> Path:
    """Acc and gyro magnitude over time with the predicted activities as coloured bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = [k for k in ("acc", "gyro") if any(ch.startswith(k) for ch in session.channels)]
    cmap = plt.get_cmap("tab20")
    colour = {c: cmap(i % 20) for i, c in enumerate(classes)}
    fig, axes = plt.subplots(max(len(names), 1), 1, figsize=(14, 5), sharex=True, squeeze=False)
    for ax, kind in zip(axes[:, 0], names, strict=False):
        cols = [i for i, ch in enumerate(session.channels) if ch.startswith(kind)]
        mag = np.linalg.norm(session.values[:, cols], axis=1)
        ax.plot(session.t, mag, lw=0.5, color="black")
        ax.set_ylabel(f"|{kind}| ({'g' if kind == 'acc' else 'rad/s'})")
        for seg in tl.segments:
            ax.axvspan(seg.start_s, seg.end_s, color=colour[seg.activity], alpha=0.35, lw=0)
    axes[-1, 0].set_xlabel("time (s)")
    seen = list(dict.fromkeys(s.activity for s in tl.segments))
    axes[0, 0].legend(handles=[Patch(color=colour[a], alpha=0.5, label=a) for a in seen],
                      loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="predicted")
    title = f"subject {session.subject} · session {session.session}"
    if agreement is not None and np.isfinite(agreement):
        title += f" · agreement with labels {agreement:.1%}"
    axes[0, 0].set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def write_table(df: pd.DataFrame, out: Path) -> Path:
    """CSV or parquet by ``out``'s suffix, written atomically."""
    if out.suffix not in (".csv", ".parquet"):
        raise DataError(f"{out}: output must end in .csv or .parquet")
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return out


def predict_files(paths: list[Path], model: LoadedModel, out: Path, smoothing_windows: int = 3,
                  plots_dir: Path | None = None, subject: int = 0, acc_unit: str = "g",
                  gyro_unit: str = "rad/s", progress: bool = True, time_unit: str = "s",
                  plausibility: Plausibility = "error", smoothing: str = "majority",
                  switch_prob: float = 0.05) -> PredictResult:
    """Timelines for every session of every file → ``out`` (one row per segment) and PNGs.

    PNGs go to ``plots_dir`` (default: ``<out stem>_plots`` beside ``out``) as
    ``<file stem>_s<subject>_<session>.png``.
    """
    from rich.progress import Progress

    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise DataError(f"{out}: output must end in .csv or .parquet")
    plots_dir = Path(plots_dir) if plots_dir else out.with_name(f"{out.stem}_plots")
    spec = model.spec
    rows: list[dict[str, object]] = []
    result = PredictResult(timeline=pd.DataFrame(columns=TIMELINE_COLUMNS))
    with Progress(disable=not progress or len(paths) < 2, transient=True) as bar:
        task = bar.add_task("predicting", total=len(paths))
        for path in map(Path, paths):
            for s in read_sessions(path, spec.channels, spec.rate_hz, subject, acc_unit, gyro_unit,
                                   time_unit, plausibility):
                tl = predict_timeline(model, s.values, s.rate_hz, smoothing_windows,
                                      start_time_s=float(s.t[0]), method=smoothing, switch_prob=switch_prob)
                if not tl.segments:
                    log.warning("%s: session %s is shorter than one window; skipped", path, s.session)
                    continue
                agree = (label_agreement(tl.segments, s.t, s.labels) if s.labels is not None
                         else float("nan"))
                if np.isfinite(agree):
                    result.agreement[f"{s.subject}/{s.session}"] = agree
                rows += [{"file": str(path), "subject": s.subject, "session": s.session,
                          **seg.as_dict()} for seg in tl.segments]
                png = plots_dir / f"{path.stem}_s{s.subject}_{s.session}.png"
                result.plots.append(plot_session(s, tl, spec.classes, png, agree))
            bar.advance(task)
    if not rows:
        raise DataError("predict: no session is longer than one window "
                        f"({spec.window_s} s at {spec.rate_hz} Hz)")
    result.timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    write_table(result.timeline, out)
    return result
