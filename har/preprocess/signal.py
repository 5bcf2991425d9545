"""Per-session signal operations: resampling and the gravity/body split of acceleration.

Resampling uses ``scipy.signal.resample_poly`` (polyphase FIR with an anti-aliasing filter)
with the rate ratio approximated by a fraction with denominator ≤ 1000. Unlike linear
interpolation it does not alias when downsampling; the output length is
``ceil(len * up / down)``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt


def resample(values: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Resample ``values`` (T, ...) along axis 0 from ``rate_in`` to ``rate_out`` Hz."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"resample: rates must be positive, got {rate_in} → {rate_out}")
    if abs(rate_in - rate_out) < 1e-9:
        return values
    frac = Fraction(rate_out / rate_in).limit_denominator(1000)
    return resample_poly(values, frac.numerator, frac.denominator, axis=0)


def gravity_body_split(acc: np.ndarray, rate_hz: float, cutoff_hz: float = 0.3,
                       order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase Butterworth low-pass of ``acc`` (T, 3) gives gravity; body = acc - gravity.

    Sessions too short for ``sosfiltfilt``'s padding are treated as pure gravity.
    """
    sos = butter(order, cutoff_hz, btype="low", fs=rate_hz, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    gravity = sosfiltfilt(sos, acc, axis=0) if len(acc) > padlen else np.array(acc, copy=True)
    return gravity, acc - gravity
