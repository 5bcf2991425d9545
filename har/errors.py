"""Errors every stage raises, so the CLI can turn them into a clear message and exit code."""

from __future__ import annotations

from pathlib import Path


class HarError(Exception):
    """Base class for expected, user-facing failures."""


class DataError(HarError):
    """Input data is missing, corrupt or not in the expected schema."""


class ValidationFailed(HarError):
    """A Great Expectations suite failed; ``report`` is the full report's path when one was written."""

    def __init__(self, message: str, report: Path | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConfigError(HarError):
    """params.yaml (or an override) is invalid."""
