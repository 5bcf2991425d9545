"""Drift statistics, pure functions: PSI over reference quantile bins and the two-sample KS test.

A *feature* is ``<channel>_mean`` or ``<channel>_std`` (per window). A channel drifts when any of
its features exceeds the threshold; the data set drifts when at least ``min_drifted_channels``
channels do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from har.monitoring.reference import bin_proportions

EPS = 1e-4  # floor on bin shares so an empty bin gives a large but finite PSI


def psi(ref_props: np.ndarray | list[float], edges: np.ndarray | list[float],
        values: np.ndarray) -> float:
    """Population stability index of ``values`` against the reference bins.

    ``sum((a - e) * ln(a / e))`` over the bins (-inf, e0], …, (e_last, inf); rule of thumb:
    < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift.
    """
    e = np.clip(np.asarray(ref_props, dtype=np.float64), EPS, None)
    a = np.clip(bin_proportions(values, np.asarray(edges, dtype=np.float64)), EPS, None)
    if len(a) != len(e):
        raise ValueError(f"{len(e)} reference proportions for {len(edges)} edges")
    return float(np.sum((a - e) * np.log(a / e)))


def ks(ref_sample: np.ndarray | list[float], values: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    v = np.asarray(values, dtype=np.float64)
    res = stats.ks_2samp(np.asarray(ref_sample, dtype=np.float64), v[np.isfinite(v)])
    return float(res.statistic), float(res.pvalue)


@dataclass
class ChannelDrift:
    channel: str
    stat: float  # the largest statistic over the channel's features
    drifted: bool
    features: dict[str, float] = field(default_factory=dict)  # feature → statistic
    p_values: dict[str, float] = field(default_factory=dict)  # KS only


@dataclass
class DriftReport:
    method: str
    threshold: float
    min_drifted_channels: int
    n_recent: int
    drifted: bool
    channels: list[ChannelDrift] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # reference features absent from recent data
    note: str = ""

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_drifted": self.n_drifted}

    def table(self) -> list[dict[str, Any]]:
        return [{"channel": c.channel, "stat": round(c.stat, 4), "drifted": c.drifted,
                 **{k: round(v, 4) for k, v in c.features.items()}} for c in self.channels]

    def to_markdown(self) -> str:
        verdict = "**DRIFT DETECTED**" if self.drifted else "no drift"
        lines = [f"# Input drift: {verdict}", "",
                 f"{self.method.upper()} over {self.n_recent} recent windows; threshold "
                 f"{self.threshold}, {self.n_drifted} of {len(self.channels)} channels drifted "
                 f"(alarm at ≥ {self.min_drifted_channels}).", ""]
        if self.note:
            lines += [self.note, ""]
        lines += ["| channel | statistic | mean feature | std feature | drifted |",
                  "|---|---|---|---|---|"]
        for c in self.channels:
            fm = c.features.get(f"{c.channel}_mean", float("nan"))
            fs = c.features.get(f"{c.channel}_std", float("nan"))
            lines.append(f"| {c.channel} | {c.stat:.4f} | {fm:.4f} | {fs:.4f} | "
                         f"{'yes' if c.drifted else 'no'} |")
        if self.missing:
            lines += ["", f"Not in the recent data: {', '.join(self.missing)}"]
        return "\n".join(lines)


def _channel(feature: str) -> str:
    return feature.rsplit("_", 1)[0]


def drift_report(reference: dict[str, Any], recent: pd.DataFrame, method: Literal["psi", "ks"],
                 threshold: float, min_drifted_channels: int = 1) -> DriftReport:
    """Compare each reference feature with the same column of ``recent`` (one row per window)."""
    if method not in ("psi", "ks"):
        raise ValueError(f"method must be 'psi' or 'ks', got {method!r}")
    feats: dict[str, dict[str, Any]] = reference["features"]
    by_channel: dict[str, ChannelDrift] = {}
    missing: list[str] = []
    n_recent = int(len(recent))
    for name, ref in feats.items():
        col = recent[name].to_numpy(dtype=np.float64) if name in recent.columns else np.empty(0)
        col = col[np.isfinite(col)]
        if not len(col):
            missing.append(name)
            continue
        if method == "psi":
            stat, pval = psi(ref["proportions"], ref["edges"], col), None
        else:
            stat, pval = ks(ref["sample"], col)
        ch = by_channel.setdefault(_channel(name), ChannelDrift(_channel(name), 0.0, False))
        ch.features[name] = stat
        if pval is not None:
            ch.p_values[name] = pval
        ch.stat = max(ch.stat, stat)
        ch.drifted = ch.stat > threshold
    channels = list(by_channel.values())
    note = "" if n_recent else "No recent windows: nothing to compare (no drift reported)."
    drifted = bool(n_recent) and sum(c.drifted for c in channels) >= min_drifted_channels
    return DriftReport(method=method, threshold=threshold, min_drifted_channels=min_drifted_channels,
                       n_recent=n_recent, drifted=drifted, channels=channels, missing=missing,
                       note=note)
