"""Stage entry points: typed params in, stage functions called, contract files out.

The CLI, dvc.yaml (through the CLI) and Prefect flows call these; they hold no stage logic,
only the mapping from params.yaml sections onto the pure functions in each stage package.
"""

from __future__ import annotations

import json
from pathlib import Path

from har.config import Params, mirror_dir
from har.logging import get_logger

log = get_logger(__name__)


def fetch(p: Params) -> Path:
    from har.data.fetch import fetch_dataset

    return fetch_dataset(p.data.dataset, p.data.raw_dir, mirror_dir(),
                         retries=p.data.download_retries, timeout_s=p.data.download_timeout_s)


def ingest(p: Params) -> Path:
    from har.data.ingest import read_hapt, write_recordings
    from har.data.registry import get_dataset

    spec = get_dataset(p.data.dataset)
    df = read_hapt(p.data.raw_dir / spec.folder, subjects=p.data.subjects)
    write_recordings(df, p.data.interim_path, sampling_rate_hz=spec.sampling_rate_hz,
                     source=spec.name)
    log.info("ingested %d samples from %d sessions", len(df), df["session"].nunique())
    return p.data.interim_path


def import_own(p: Params, paths: list[Path], out: Path, *, subject: int, acc_unit: str,
               gyro_unit: str) -> Path:
    from har.data.ingest import write_recordings
    from har.data.own import import_recordings

    df = import_recordings(paths, target_rate_hz=p.preprocess.target_rate_hz, subject=subject,
                           acc_unit=acc_unit, gyro_unit=gyro_unit)
    write_recordings(df, out, sampling_rate_hz=p.preprocess.target_rate_hz, source="own")
    return out


def validate(p: Params, *, windows: bool = False) -> str:
    """Validate recordings (or processed windows); raise ValidationFailed with a short report."""
    from har.data.ingest import read_recordings
    from har.data.registry import get_dataset
    from har.validation.run import raise_for_failure, validate_recordings, validate_windows

    v = p.validate_
    if windows:
        from har.preprocess.windows import load_windows

        out = p.preprocess.out_dir
        w = load_windows(out / "windows.npz")
        splits = json.loads((out / "splits.json").read_text())
        report = validate_windows(
            w.X, w.y, w.subject,
            {k: splits[k] for k in ("train", "val", "test")},
            classes=p.preprocess.classes, window_len=w.X.shape[1],
            project_dir=v.gx_dir, docs_dir=v.docs_dir,
        )
        report_path = v.report_path.with_name("validation_windows.json")
    else:
        df, meta = read_recordings(p.data.interim_path)
        report = validate_recordings(
            df, project_dir=v.gx_dir, classes=p.preprocess.classes,
            sampling_rate_hz=float(meta["sampling_rate_hz"]),
            acc_abs_max_g=v.acc_abs_max_g, gyro_abs_max_rad_s=v.gyro_abs_max_rad_s,
            rate_tolerance=v.rate_tolerance, docs_dir=v.docs_dir,
            # every subject of the dataset (or of the configured subset) must be present
            subjects=p.data.subjects or list(get_dataset(p.data.dataset).subjects) or None,
        )
        report_path = v.report_path
    # A failing run writes its report beside the good one, never over it.
    report.to_json(report_path if report.success else report_path.with_suffix(".failed.json"))
    raise_for_failure(report)
    return report.summary()


def preprocess(p: Params) -> dict:
    from har.data.ingest import read_recordings
    from har.preprocess.pipeline import preprocess as run_preprocess

    df, meta = read_recordings(p.data.interim_path)
    pp, sp = p.preprocess, p.split
    return run_preprocess(
        df, float(meta["sampling_rate_hz"]), pp.out_dir,
        target_rate_hz=pp.target_rate_hz, window_s=pp.window_s, overlap=pp.overlap,
        label_policy=pp.label_policy, min_purity=pp.min_purity, gravity_split=pp.gravity_split,
        gravity_cutoff_hz=pp.gravity_cutoff_hz, classes=pp.classes,
        test_subjects=sp.test_subjects, n_val=sp.n_val_subjects, cv_folds=sp.cv_folds,
        seed=sp.seed,
    )
