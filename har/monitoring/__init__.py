"""Input drift monitoring: reference statistics from training windows, PSI/KS against recent inputs."""

from __future__ import annotations

from har.monitoring.drift import ChannelDrift, DriftReport, drift_report, ks, psi

__all__ = ["ChannelDrift", "DriftReport", "drift_report", "ks", "psi"]
