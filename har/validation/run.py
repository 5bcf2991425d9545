"""Run the suites through a file-backed GX project; build Data Docs; summarise failures."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from har.contracts import SENSOR_CHANNELS
from har.errors import ValidationFailed
from har.io import atomic_path
from har.validation.suites import expected_channels, gx, recordings_suite, windows_suite


@dataclass
class Failure:
    suite: str
    expectation: str
    column: str | None
    examples: list[Any]
    observed: Any = None


@dataclass
class ValidationReport:
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        if self.success:
            return f"validation passed: {self.evaluated} expectations met"
        lines = [f"validation FAILED: {len(self.failures)} of {self.evaluated} expectations"]
        for f in self.failures:
            what = (f"{'missing' if 'contain_set' in f.expectation else 'examples'} "
                    f"{f.examples}" if f.examples else f"observed {f.observed}")
            lines.append(f"  - [{f.suite}] {f.expectation} on column {f.column!r}: {what}")
        return "\n".join(lines)

    def to_json(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2, default=str))


def raise_for_failure(report: ValidationReport) -> None:
    if not report.success:
        raise ValidationFailed(report.summary())


def _context(project_dir: Path) -> Any:
    project_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(project_dir))
    # Metric progress bars flood logs and CI output; our CLI reports the outcome instead.
    from great_expectations.data_context.types.base import ProgressBarsConfig

    current = ctx.variables.progress_bars
    if (current.get("globally") if isinstance(current, dict) else getattr(current, "globally",
                                                                           None)) is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.save()
    return ctx


def _run_suite(ctx: Any, suite: Any, df: pd.DataFrame, label: str | None = None) -> list[Failure]:
    """Run `suite` on `df` via its checkpoint (Data Docs updated); `label` tags failures."""
    try:
        ds = ctx.data_sources.get("har")
    except (KeyError, ValueError, LookupError):
        ds = ctx.data_sources.add_pandas("har")
    asset_name = suite.name
    try:
        asset = ds.get_asset(asset_name)
    except LookupError:
        asset = ds.add_dataframe_asset(asset_name)
    try:
        bd = asset.get_batch_definition("all")
    except (KeyError, LookupError):
        bd = asset.add_batch_definition_whole_dataframe("all")
    try:
        stored = ctx.suites.get(suite.name)
        vd = ctx.validation_definitions.get(f"{suite.name}_validation")
        cp = ctx.checkpoints.get(f"{suite.name}_checkpoint")
        unchanged = _signature(stored) == _signature(suite)
    except Exception:  # GX raises several store-specific "not found" types
        unchanged = False
    # Only rewrite the committed project when the suite changed: GX assigns fresh ids on save.
    if not unchanged:
        suite = ctx.suites.add_or_update(suite)
        vd = ctx.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{suite.name}_validation", data=bd, suite=suite))
        cp = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=f"{suite.name}_checkpoint", validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
    from great_expectations.core.run_identifier import RunIdentifier

    result = cp.run(batch_parameters={"dataframe": df},
                    run_id=RunIdentifier(run_name=label or suite.name))
    failures: list[Failure] = []
    for vr in result.run_results.values():
        for r in vr.results:
            if r.success:
                continue
            cfg = r.expectation_config
            res = r.result or {}
            failures.append(Failure(
                suite=label or suite.name, expectation=cfg.type, column=cfg.kwargs.get("column"),
                # contain-set expectations report what is missing, not unexpected rows
                examples=[_plain(v) for v in (res.get("partial_unexpected_list")
                                              or res.get("partial_missing_list") or [])[:5]],
                observed=_plain(res.get("observed_value")),
            ))
    return failures


def _signature(suite: Any) -> list[str]:
    out = []
    for e in suite.expectations:
        cfg = e.configuration.to_json_dict()
        cfg.pop("id", None)
        out.append(json.dumps(cfg, sort_keys=True, default=str))
    return sorted(out)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _publish_docs(ctx: Any, docs_dir: Path | None) -> None:
    if docs_dir is None:
        return
    ctx.build_data_docs()
    site = Path(ctx.root_directory) / "uncommitted" / "data_docs" / "local_site"
    if site.is_dir():
        if docs_dir.exists():
            shutil.rmtree(docs_dir)
        shutil.copytree(site, docs_dir)


def _with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Per-session diffs so 'strictly increasing' and 'constant rate' become column checks."""
    out = df.copy()
    g = out.groupby(["subject", "session"], sort=False)
    out["sample_step"] = g["sample"].diff()
    out["dt"] = g["t"].diff()
    return out


def validate_recordings(df: pd.DataFrame, *, project_dir: Path, classes: list[str],
                        sampling_rate_hz: float, acc_abs_max_g: float = 16.0,
                        gyro_abs_max_rad_s: float = 35.0, rate_tolerance: float = 0.01,
                        subjects: list[int] | None = None, docs_dir: Path | None = None,
                        channels: list[str] | None = None) -> ValidationReport:
    """The recordings suite on ``df``; ``channels`` (default: from the data, see
    ``suites.expected_channels``) are the sensor columns that must be complete."""
    ctx = _context(project_dir)
    if channels is None:
        channels = expected_channels([c for c in SENSOR_CHANNELS
                                      if c in df.columns and df[c].notna().any()])
    suite = recordings_suite(classes, acc_abs_max_g, gyro_abs_max_rad_s, subjects,
                             sampling_rate_hz=sampling_rate_hz, rate_tolerance=rate_tolerance,
                             channels=channels)
    n = len(suite.expectations)
    failures = _run_suite(ctx, suite, _with_derived(df))
    for f in failures:
        if f.column == "label" and f.expectation == "expect_column_values_to_be_in_set":
            # GX shows the first bad rows (all one label); what to add to classes is every one
            f.examples = sorted(set(df["label"].dropna()) - set(classes))
    _publish_docs(ctx, docs_dir)
    return ValidationReport(success=not failures, evaluated=n, failures=failures)


def windows_frame(X: np.ndarray, y: np.ndarray, subject: np.ndarray, classes: list[str],
                  splits: dict[str, list[int]]) -> pd.DataFrame:
    membership = pd.Series([s for v in splits.values() for s in v]).value_counts()
    split_of = {s: k for k, v in splits.items() for s in v}
    return pd.DataFrame({
        "split": [split_of.get(int(s), "none") for s in subject],
        "subject": subject.astype(int),
        "label": np.asarray(classes, dtype=object)[y],
        "n_samples": X.shape[1], "n_channels": X.shape[2],
        "finite": np.isfinite(X).all(axis=(1, 2)),
        "splits_of_subject": [int(membership.get(int(s), 0)) for s in subject],
    })


def validate_windows(X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                     splits: dict[str, list[int]], *, classes: list[str], window_len: int,
                     project_dir: Path, docs_dir: Path | None = None) -> ValidationReport:
    ctx = _context(project_dir)
    frame = windows_frame(X, y, subject, classes, splits)
    failures: list[Failure] = []
    evaluated = 0
    suite = windows_suite(classes, window_len, X.shape[2])
    for split in splits:
        evaluated += len(suite.expectations)
        failures += _run_suite(ctx, suite, frame[frame["split"] == split].reset_index(drop=True),
                               label=f"windows_{split}")
    _publish_docs(ctx, docs_dir)
    return ValidationReport(success=not failures, evaluated=evaluated, failures=failures)
