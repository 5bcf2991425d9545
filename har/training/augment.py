"""IMU augmentations on raw windows (batch, T, C) in physical units; each one switchable in params.

Rotation applies the same random 3-D rotation to the accelerometer and the gyroscope triplets,
which is what re-mounting the device does physically; jitter is scaled by each channel's std.
"""

from __future__ import annotations

import numpy as np

from har.config import AugmentParams


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniformly random rotation matrices (n, 3, 3) from normalised quaternions."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def time_warp(X: np.ndarray, sigma: float, rng: np.random.Generator, knots: int = 4) -> np.ndarray:
    """Smoothly speed up / slow down time: a random monotone warp through ``knots`` points."""
    n, t, _ = X.shape
    speed = np.clip(rng.normal(1.0, sigma, (n, knots + 2)), 0.1, None)
    grid = np.linspace(0, t - 1, knots + 2)
    steps = np.stack([np.interp(np.arange(t), grid, s) for s in speed])  # (n, t)
    warped = np.cumsum(steps, axis=1)
    warped = (warped - warped[:, :1]) / (warped[:, -1:] - warped[:, :1]) * (t - 1)
    i0 = np.floor(warped).astype(np.int64).clip(0, t - 1)
    i1 = (i0 + 1).clip(0, t - 1)
    frac = (warped - i0)[..., None]
    rows = np.arange(n)[:, None]
    return (X[rows, i0] * (1 - frac) + X[rows, i1] * frac).astype(X.dtype)


def augment_batch(X: np.ndarray, channels: list[str], cfg: AugmentParams, channel_std: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Return an augmented copy; each augmentation hits a window with probability ``cfg.p``."""
    X = X.copy()
    n, _, c = X.shape
    if cfg.rotation:
        hit = rng.random(n) < cfg.p
        if hit.any():
            rot = random_rotations(int(hit.sum()), rng)
            for sensor in ("acc", "gyro"):
                idx = [channels.index(f"{sensor}_{a}") for a in "xyz" if f"{sensor}_{a}" in channels]
                if len(idx) == 3:
                    X[np.ix_(hit, np.arange(X.shape[1]), idx)] = np.einsum(
                        "nij,ntj->nti", rot, X[hit][:, :, idx])
    if cfg.scaling_sigma > 0:
        hit = (rng.random(n) < cfg.p)[:, None, None]
        gain = rng.normal(1.0, cfg.scaling_sigma, (n, 1, c))
        X = np.where(hit, X * gain, X)
    if cfg.time_warp_sigma > 0:
        hit = rng.random(n) < cfg.p
        if hit.any():
            X[hit] = time_warp(X[hit], cfg.time_warp_sigma, rng)
    if cfg.jitter_sigma > 0:
        hit = (rng.random(n) < cfg.p)[:, None, None]
        noise = rng.standard_normal(X.shape) * (cfg.jitter_sigma * channel_std)
        X = np.where(hit, X + noise, X)
    return X.astype(np.float32)


def mixup(X: np.ndarray, alpha: float, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Mixup (Zhang et al., 2018): ``lam·X + (1-lam)·X[perm]`` with ``lam ~ Beta(alpha, alpha)``;
    the loss is blended with the same ``lam``. None when ``alpha`` is 0 (off; no random draws, so a
    run without mixup keeps its random stream)."""
    if alpha <= 0:
        return None
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(X))
    return (lam * X + (1 - lam) * X[perm]).astype(X.dtype, copy=False), perm, lam
