"""Deep model shapes and sizes, and the IMU augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from har.config import AugmentParams, TrainParams
from har.models import build_model, get_model, model_names
from har.models._layers import n_parameters
from har.training.augment import augment_batch, random_rotations, time_warp

DEEP_MODELS = [n for n in model_names() if get_model(n).kind == "deep"]

CH6 = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


@pytest.mark.parametrize("name", DEEP_MODELS)
@pytest.mark.parametrize(("n_channels", "window_len"), [(6, 128), (3, 150)])
def test_output_shape(name: str, n_channels: int, window_len: int) -> None:
    net = build_model(name, TrainParams(), n_channels, 12).eval()
    with torch.no_grad():
        out = net(torch.randn(5, window_len, n_channels))
    assert out.shape == (5, 12)
    assert torch.isfinite(out).all()


def test_tinyhar_is_tiny() -> None:
    assert n_parameters(build_model("tinyhar", TrainParams(), 6, 12)) <= 30_000


def test_standardize_is_inside_the_model() -> None:
    """Scaling the input and the stored mean/std together leaves the output unchanged."""
    torch.manual_seed(0)
    net = build_model("cnn1d", TrainParams(), 6, 4).eval()
    x = torch.randn(3, 64, 6)
    net.standardize.set(np.zeros(6), np.ones(6))
    ref = net(x)
    net.standardize.set(np.full(6, 5.0), np.full(6, 2.0))
    assert torch.allclose(net(x * 2 + 5), ref, atol=1e-5)


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown model 'lstm9'"):
        build_model("lstm9", TrainParams(), 6, 12)


def test_rotations_are_proper() -> None:
    r = random_rotations(100, np.random.default_rng(0))
    assert np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1.0)


def test_rotation_keeps_sensor_magnitudes() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 50, 6)).astype(np.float32)
    cfg = AugmentParams(p=1.0, jitter_sigma=0, scaling_sigma=0, rotation=True, time_warp_sigma=0)
    Y = augment_batch(X, CH6, cfg, np.ones(6), rng)
    assert not np.allclose(X, Y)
    for sl in (slice(0, 3), slice(3, 6)):
        assert np.allclose(np.linalg.norm(X[..., sl], axis=2), np.linalg.norm(Y[..., sl], axis=2), atol=1e-5)


def test_time_warp_keeps_endpoints_and_range() -> None:
    rng = np.random.default_rng(2)
    X = np.cumsum(rng.normal(size=(8, 100, 3)), axis=1).astype(np.float32)
    Y = time_warp(X, 0.3, rng)
    assert Y.shape == X.shape
    assert np.allclose(Y[:, 0], X[:, 0]) and np.allclose(Y[:, -1], X[:, -1])
    assert (Y.max(axis=1) <= X.max(axis=1) + 1e-5).all()


def test_augmentations_switch_off() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 20, 6)).astype(np.float32)
    off = AugmentParams(p=1.0, jitter_sigma=0, scaling_sigma=0, rotation=False, time_warp_sigma=0)
    assert np.array_equal(augment_batch(X, CH6, off, np.ones(6), rng), X)
    # acc-only data: rotation applies to the one triplet there is
    Y = augment_batch(X[..., :3], CH6[:3], AugmentParams(p=1.0), np.ones(3), rng)
    assert Y.shape == (4, 20, 3) and np.isfinite(Y).all()
