"""Per-session signal operations: resampling and the gravity/body split of acceleration.

Resampling uses ``scipy.signal.resample_poly`` (polyphase FIR with an anti-aliasing filter)
with the rate ratio approximated by a fraction with denominator ≤ 1000. Unlike linear
interpolation it does not alias when downsampling; the output length is
``ceil(len * up / down)``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

# resample_poly designs a FIR of about 20 × max(up, down) taps and works at `up` times the input
# rate; an extreme ratio (50 Hz from 0.0002 Hz) asks for gigabytes. Every sensor rate from 1 Hz to
# 2 kHz onto a 10-200 Hz model rate stays far below this bound.
MAX_POLYPHASE_FACTOR = 4096


def resample_factors(rate_in: float, rate_out: float) -> tuple[int, int]:
    """(up, down) of the polyphase resampler for ``rate_in`` → ``rate_out`` Hz, checked before any
    allocation: ValueError for non-finite or non-positive rates and for ratios whose filter would
    exceed ``MAX_POLYPHASE_FACTOR``."""
    if not (math.isfinite(rate_in) and math.isfinite(rate_out) and rate_in > 0 and rate_out > 0):
        raise ValueError(f"resample: rates must be finite and positive, got {rate_in} → {rate_out} Hz")
    ratio = rate_out / rate_in
    if not math.isfinite(ratio) or ratio > MAX_POLYPHASE_FACTOR or ratio < 1 / MAX_POLYPHASE_FACTOR:
        raise ValueError(f"resample: {rate_in:g} Hz → {rate_out:g} Hz is a ratio of {ratio:.3g}; "
                         f"at most {MAX_POLYPHASE_FACTOR}× up or down is supported")
    frac = Fraction(ratio).limit_denominator(1000)
    up, down = frac.numerator, frac.denominator
    if max(up, down) > MAX_POLYPHASE_FACTOR:
        raise ValueError(f"resample: {rate_in:g} Hz → {rate_out:g} Hz needs polyphase factors "
                         f"{up}/{down}; at most {MAX_POLYPHASE_FACTOR} is supported")
    return up, down


def resample(values: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Resample ``values`` (T, ...) along axis 0 from ``rate_in`` to ``rate_out`` Hz."""
    up, down = resample_factors(rate_in, rate_out)
    if abs(rate_in - rate_out) < 1e-9:
        return values
    return resample_poly(values, up, down, axis=0)


def gravity_body_split(acc: np.ndarray, rate_hz: float, cutoff_hz: float = 0.3,
                       order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase Butterworth low-pass of ``acc`` (T, 3) gives gravity; body = acc - gravity.

    Sessions too short for ``sosfiltfilt``'s padding are treated as pure gravity.
    """
    sos = butter(order, cutoff_hz, btype="low", fs=rate_hz, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    gravity = sosfiltfilt(sos, acc, axis=0) if len(acc) > padlen else np.array(acc, copy=True)
    return gravity, acc - gravity
