"""har: human activity recognition from inertial recordings, as an MLOps workflow."""

__version__ = "0.1.0"
