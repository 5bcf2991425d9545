"""Errors every stage raises, so the CLI can turn them into a clear message and exit code."""


class HarError(Exception):
    """Base class for expected, user-facing failures."""


class DataError(HarError):
    """Input data is missing, corrupt or not in the expected schema."""


class ValidationFailed(HarError):
    """A Great Expectations suite failed."""


class ConfigError(HarError):
    """params.yaml (or an override) is invalid."""
