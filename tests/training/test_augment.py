"""The IMU augmentations (har/training/augment.py): proper rotations, magnitudes kept, time warp
endpoints, each augmentation switchable."""

from __future__ import annotations

import numpy as np
import torch

from har.config import AugmentParams
from har.training.augment import augment_batch, mixup, random_rotations, time_warp

CH6 = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


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


def test_mixup_blends_pairs_with_one_weight() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(16, 20, 6)).astype(np.float32)
    assert mixup(X, 0.0, rng) is None  # off: no draw from the stream
    Xm, perm, lam = mixup(X, 0.4, np.random.default_rng(5))
    assert Xm.dtype == X.dtype and 0.0 <= lam <= 1.0 and sorted(perm) == list(range(16))
    assert np.allclose(Xm, lam * X + (1 - lam) * X[perm], atol=1e-6)
    again = mixup(X, 0.4, np.random.default_rng(5))  # the epoch's seeded stream: exact resume holds
    assert again is not None and np.array_equal(again[0], Xm)


def test_label_smoothing_weights_each_window_by_its_target_class_only() -> None:
    from har.training.loop import weighted_loss

    weights = torch.tensor([1.0, 1.0, 10.0])  # class 2 is rare
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, -2.0], [0.5, 0.2, 1.0]])
    y = torch.tensor([0, 1, 2])
    # no smoothing: torch's own weighted cross-entropy
    assert torch.equal(weighted_loss(weights, 0.0)(logits, y),
                       torch.nn.CrossEntropyLoss(weight=weights)(logits, y))
    eps = 0.1
    logp = torch.log_softmax(logits, 1)
    by_hand = [weights[t] * (-(1 - eps) * logp[i, t] - eps * logp[i].mean())
               for i, t in enumerate(y.tolist())]
    expected = torch.stack(by_hand).sum() / weights[y].sum()
    assert torch.allclose(weighted_loss(weights, eps)(logits, y), expected)
    # the uniform part treats the rare class like any other: a common-class window pushes its two
    # unlikely classes (equal logits) up equally; torch's label_smoothing pushes the rare one 10× harder
    ours = torch.tensor([[4.0, -4.0, -4.0]], requires_grad=True)
    weighted_loss(weights, eps)(ours, torch.tensor([0])).backward()
    assert torch.allclose(ours.grad[0, 1], ours.grad[0, 2])
    torchs = torch.tensor([[4.0, -4.0, -4.0]], requires_grad=True)
    torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=eps)(torchs, torch.tensor([0])).backward()
    assert torchs.grad[0, 2] < 5 * torchs.grad[0, 1] < 0
