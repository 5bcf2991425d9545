"""Data stages: fetch → ingest → validate → preprocess → validate_windows (docs/data.md).

Also the data commands that are not pipeline stages: pushing to the S3 lake and importing your own
recordings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from har.config import Params, data_mirror
from har.contracts import OWN_SOURCE, SPLITS_FILE, WINDOWS_FILE
from har.data.fetch import fetch_dataset, fetch_own
from har.data.ingest import read_recordings, write_recordings
from har.data.lake import PushReport
from har.data.lake import push as push_to_lake
from har.data.own import import_recordings
from har.data.registry import get_dataset
from har.errors import DataError, ValidationFailed
from har.logging import get_logger
from har.monitoring.reference import reference_from_processed, write_reference
from har.preprocess.pipeline import preprocess as run_preprocess
from har.preprocess.windows import load_windows
from har.validation.run import ValidationReport, validate_recordings
from har.validation.run import validate_windows as run_windows_suite

log = get_logger(__name__)


def fetch(p: Params, mirror: str | None = None) -> dict[str, Any]:
    """Verified copy of data.source in data.raw_dir: a dataset (``mirror``, a folder or s3:// URL,
    overrides HAR_DATA_MIRROR) or, for ``own``, a snapshot of data.own_dir."""
    d = p.data
    spec = get_dataset(d.source)
    if spec.url is None:  # the user's files: their folder is the only source
        path = fetch_own(d.own_dir, d.raw_dir / spec.folder)
        return {"path": str(path), "summary": f"verified snapshot of {d.own_dir} at {path}"}
    path = fetch_dataset(d.source, d.raw_dir, data_mirror(mirror),
                         retries=d.download_retries, timeout_s=d.download_timeout_s)
    return {"path": str(path), "summary": f"verified dataset at {path}"}


def push(p: Params, to: str, own: list[Path] | None = None, *,
         create_bucket: bool = False) -> PushReport:
    """Upload the verified raw copy of data.source (and own recordings) to the s3:// lake."""
    spec = get_dataset(p.data.source)
    if spec.url is None:
        raise DataError(f"data.source {spec.name!r}: the lake holds datasets; push a dataset (e.g. "
                        "`har data push hapt`) with your recordings as --own parquet (`har data import`)")
    return push_to_lake(to, spec, p.data.raw_dir, own, create_bucket=create_bucket)


def own_format(p: Params) -> dict[str, Any]:
    """How own recordings are written (data.*), as keyword arguments of
    har.data.own.import_recordings and read_own."""
    d = p.data
    return {"subject": d.default_subject, "acc_unit": d.acc_unit, "gyro_unit": d.gyro_unit,
            "time_unit": d.time_unit, "plausibility": d.plausibility}


def ingest(p: Params) -> dict[str, Any]:
    """data.raw_dir/<source> → the canonical recordings (data.interim_path) by the dataset's reader;
    own recordings come at any rate and are resampled once, onto preprocess.target_rate_hz."""
    d = p.data
    spec = get_dataset(d.source)
    root = d.raw_dir / spec.folder
    if spec.sampling_rate_hz is None:
        rate = p.preprocess.target_rate_hz
        df = spec.read(root, d.subjects, rate_hz=rate, **own_format(p))
    else:
        rate = spec.sampling_rate_hz
        df = spec.read(root, d.subjects)
    write_recordings(df, d.interim_path, sampling_rate_hz=rate, source=spec.name)
    summary = (f"ingested {len(df)} samples from {df['session'].nunique()} sessions of "
               f"{df['subject'].nunique()} subjects into {d.interim_path}")
    log.info("%s", summary)
    return {"path": str(d.interim_path), "n_samples": len(df), "summary": summary}


def import_own(p: Params, paths: list[Path], out: Path) -> Path:
    """`har data import`: files in the own-recordings schema (read as data.* says) → ``out``."""
    rate = p.preprocess.target_rate_hz
    df = import_recordings(paths, target_rate_hz=rate, **own_format(p))
    write_recordings(df, out, sampling_rate_hz=rate, source=OWN_SOURCE)
    return out


def _report(report: ValidationReport, path: Path, what: str) -> dict[str, Any]:
    if not report.success:  # a failing run writes its report beside the good one, never over it
        failed = path.with_suffix(".failed.json")
        report.to_json(failed)
        raise ValidationFailed(f"{what}{report.summary()}", report=failed)
    report.to_json(path)
    summary = f"{what}{report.summary()}"
    log.info("%s", summary)
    return {"report": str(path), "summary": summary}


def validate(p: Params) -> dict[str, Any]:
    """The recordings suite; ValidationFailed (with a short report) when an expectation fails."""
    v = p.validate_
    df, meta = read_recordings(p.data.interim_path)
    report = validate_recordings(
        df, project_dir=v.gx_dir, classes=p.preprocess.classes,
        sampling_rate_hz=float(meta["sampling_rate_hz"]),
        acc_abs_max_g=v.acc_abs_max_g, gyro_abs_max_rad_s=v.gyro_abs_max_rad_s,
        rate_tolerance=v.rate_tolerance, docs_dir=v.docs_dir,
        # the configured subset, else every subject the dataset defines; own data: what is there
        subjects=p.data.subjects or list(get_dataset(p.data.source).subjects) or None,
    )
    return _report(report, v.report_path, "")


def validate_windows(p: Params) -> dict[str, Any]:
    """The windows suite, once per split; ValidationFailed when an expectation fails."""
    v, out = p.validate_, p.preprocess.out_dir
    w = load_windows(out / WINDOWS_FILE)
    splits = json.loads((out / SPLITS_FILE).read_text())
    report = run_windows_suite(w.X, w.y, w.subject, {k: splits[k] for k in ("train", "val", "test")},
                               classes=p.preprocess.classes, window_len=w.X.shape[1],
                               project_dir=v.gx_dir, docs_dir=v.docs_dir)
    return _report(report, v.windows_report_path, "windows ")


def preprocess(p: Params) -> dict[str, Any]:
    """Windows, subject splits, normaliser and statistics, then the drift monitor's reference
    (per-channel statistics of the training windows) at monitor.reference_path."""
    df, meta = read_recordings(p.data.interim_path)
    pp, sp = p.preprocess, p.split
    stats = run_preprocess(
        df, float(meta["sampling_rate_hz"]), pp.out_dir,
        target_rate_hz=pp.target_rate_hz, window_s=pp.window_s, overlap=pp.overlap,
        label_policy=pp.label_policy, min_purity=pp.min_purity, gravity_split=pp.gravity_split,
        gravity_cutoff_hz=pp.gravity_cutoff_hz, classes=pp.classes,
        test_subjects=sp.test_subjects, n_val=sp.n_val_subjects, cv_folds=sp.cv_folds,
        seed=sp.seed,
    )
    write_reference(reference_from_processed(pp.out_dir, seed=sp.seed), p.monitor.reference_path)
    summary = f"preprocessed {stats['n_windows']} windows into {pp.out_dir}"
    log.info("%s", summary)
    return {**stats, "summary": summary}
