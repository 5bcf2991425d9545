"""Hand-crafted time and frequency features for the classic baseline, as a torch module.

Written with plain torch ops (the DFT is a matmul against fixed cos/sin buffers, no ``torch.fft``) so
the very same computation exports to ONNX and runs in front of the tree ensemble: one model file,
one contract (``window`` in, ``probs`` out) for classic and deep models alike. The arithmetic runs in
float64 and only the result is rounded to float32, so torch and onnxruntime produce bit-identical
features in practice and the trees take the same branches in both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from har.errors import DataError

__all__ = ["BAND_EDGES_HZ", "FeatureExtractor", "extract_features", "triplets"]

BAND_EDGES_HZ: tuple[float, ...] = (0.0, 1.0, 3.0, 6.0, 12.0, 25.0)
_TIME_STATS = ("mean", "std", "min", "max", "mad", "rms", "zcr", "jerk")
# Guards use clamp_min, not "+ eps": the ONNX optimiser drops an Add of a tiny constant as x + 0.
# Guards use clamp_min, not "+ eps": the ONNX optimiser folds an Add of a tiny constant as x + 0.
_EPS = 1e-12


def triplets(channels: list[str]) -> list[tuple[str, list[int]]]:
    """(prefix, [ix, iy, iz]) for every complete ``<prefix>_x/_y/_z`` group, in channel order."""
    out: list[tuple[str, list[int]]] = []
    for i, name in enumerate(channels):
        if not name.endswith("_x"):
            continue
        prefix = name[:-2]
        try:
            idx = [i, channels.index(f"{prefix}_y"), channels.index(f"{prefix}_z")]
        except ValueError:
            continue
        out.append((prefix, idx))
    return out


class FeatureExtractor(nn.Module):
    """(batch, T, C) float32 windows in physical units → (batch, F) float32 features.

    Signals are the C input channels plus one magnitude per complete xyz triplet. Per signal:
    mean, std, min, max, mean absolute deviation, RMS, zero-crossing rate around the mean, mean
    absolute first difference (jerk), relative spectral energy per band of ``BAND_EDGES_HZ`` below
    Nyquist, dominant frequency and normalised spectral entropy. Per triplet: the three Pearson
    correlations xy, xz, yz.
    """

    def __init__(self, channels: list[str], window_len: int, rate_hz: float) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must not be empty")
        if len(set(channels)) != len(channels):
            raise ValueError(f"channels must be unique, got {channels}")
        if window_len < 4:
            raise ValueError(f"window_len must be ≥ 4 samples, got {window_len}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.channels = list(channels)
        self.window_len = int(window_len)
        self.rate_hz = float(rate_hz)
        self._triplets = triplets(self.channels)
        self.signal_names = self.channels + [f"{p}_mag" for p, _ in self._triplets]

        t = np.arange(window_len)
        k = np.arange(1, window_len // 2 + 1)  # DC dropped: signals are mean-removed first
        freqs = k * rate_hz / window_len
        ang = 2 * np.pi * np.outer(t, k) / window_len
        nyquist = rate_hz / 2
        edges = [e for e in BAND_EDGES_HZ if e < nyquist]
        upper = [*edges[1:], math.inf]
        self.bands = [(lo, min(hi, nyquist)) for lo, hi in zip(edges, upper, strict=True)]
        masks = np.stack([(freqs >= lo) & ((freqs < hi) | (hi == nyquist)) for lo, hi in self.bands], 1)
        f64 = torch.float64
        self.register_buffer("cos", torch.tensor(np.cos(ang), dtype=f64), persistent=False)
        self.register_buffer("sin", torch.tensor(np.sin(ang), dtype=f64), persistent=False)
        self.register_buffer("freqs", torch.tensor(freqs, dtype=f64), persistent=False)
        self.register_buffer("band_mask", torch.tensor(masks, dtype=f64), persistent=False)
        trip = [i for _, idx in self._triplets for i in idx]
        self.register_buffer("trip_idx", torch.tensor(trip, dtype=torch.long), persistent=False)
        # A buffer, not a Python float: the exporter stores scalar constants as float32.
        self.register_buffer("inv_log_bins", torch.tensor(1 / math.log(max(len(k), 2)), dtype=f64),
                             persistent=False)

    @property
    def feature_names(self) -> list[str]:
        """One name per output column, ``<signal>__<stat>``, in output order."""
        stats = [*_TIME_STATS, *(f"band_{lo:g}_{hi:g}hz" for lo, hi in self.bands), "dom_freq", "entropy"]
        names = [f"{s}__{st}" for st in stats for s in self.signal_names]
        for p, _ in self._triplets:
            names += [f"{p}__corr_xy", f"{p}__corr_xz", f"{p}__corr_yz"]
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64).transpose(1, 2)  # (B, C, T)
        if self._triplets:
            trip = x.index_select(1, self.trip_idx).reshape(x.shape[0], -1, 3, self.window_len)
            x = torch.cat([x, torch.sqrt((trip * trip).sum(2))], 1)  # (B, S, T)
        mean = x.mean(2)
        xc = x - mean.unsqueeze(2)
        var = (xc * xc).mean(2)
        std = torch.sqrt(var)
        mad = xc.abs().mean(2)
        rms = torch.sqrt((x * x).mean(2))
        zcr = ((xc[:, :, 1:] * xc[:, :, :-1]) < 0).to(torch.float64).mean(2)
        jerk = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(2)
        re = torch.matmul(xc, self.cos)
        im = torch.matmul(xc, self.sin)
        power = re * re + im * im  # (B, S, K)
        total = power.sum(2, keepdim=True).clamp_min(_EPS)
        bands = torch.matmul(power, self.band_mask) / total  # (B, S, n_bands)
        dom = self.freqs[power.argmax(2)]
        p = power / total
        entropy = -(p * torch.log(p.clamp_min(_EPS))).sum(2) * self.inv_log_bins
        feats = [mean, std, x.amin(2), x.amax(2), mad, rms, zcr, jerk,
                 *bands.unbind(2), dom, entropy]
        out = torch.cat(feats, 1)
        if self._triplets:
            n = len(self._triplets)
            tc = xc[:, : len(self.channels)].index_select(1, self.trip_idx).reshape(-1, n, 3, self.window_len)
            ts = std[:, : len(self.channels)].index_select(1, self.trip_idx).reshape(-1, n, 3)
            pairs = ((0, 1), (0, 2), (1, 2))
            cov = torch.stack([(tc[:, :, a] * tc[:, :, b]).mean(2) for a, b in pairs], 2)
            den = torch.stack([ts[:, :, a] * ts[:, :, b] for a, b in pairs], 2)
            out = torch.cat([out, (cov / den.clamp_min(_EPS)).reshape(x.shape[0], 3 * n)], 1)
        return out.to(torch.float32)


def check_windows(X: np.ndarray, channels: list[str], window_len: int | None = None) -> np.ndarray:
    """Validate a (n, T, C) window array and return it as contiguous float32."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[2] != len(channels):
        raise DataError(f"windows X: expected shape (n, T, {len(channels)}) for channels {channels}, "
                        f"got {X.shape}")
    if window_len is not None and X.shape[1] != window_len:
        raise DataError(f"windows X: expected {window_len} samples per window, got {X.shape[1]}")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"windows X: expected a numeric array, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise DataError("windows X: contains NaN or infinite values")
    return X


def extract_features(X: np.ndarray, channels: list[str], rate_hz: float, batch_size: int = 4096,
                     extractor: FeatureExtractor | None = None) -> np.ndarray:
    """Numpy convenience around ``FeatureExtractor``: (n, T, C) → (n, F) float32, batched."""
    X = check_windows(X, channels)
    fe = extractor or FeatureExtractor(channels, X.shape[1], rate_hz)
    if fe.window_len != X.shape[1]:
        raise DataError(f"windows X: expected {fe.window_len} samples per window, got {X.shape[1]}")
    out = np.empty((len(X), fe.n_features), np.float32)
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            out[i:i + batch_size] = fe(torch.from_numpy(X[i:i + batch_size])).numpy()
    return out
