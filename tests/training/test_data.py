"""Where training reads its windows (har/training/data.py): each split part holds exactly the windows
of that part's subjects, and the train stage never sees a test subject's window.

Checking splits.json alone cannot catch a leak here: a wrong mask in ``SplitData.part`` reads the
right split file and still hands test windows to training.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch

from har import stages
from har.config import Params
from har.preprocess.windows import load_windows, save_windows
from har.training.bundle import TrainedModel
from har.training.data import load_split_data


def _row_digest(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()


def test_each_part_holds_exactly_its_subjects_windows(project: Params) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    w = data.windows
    # every window identified by its bytes, independently of how part() selects them
    owner = {_row_digest(x): (int(s), int(y)) for x, s, y in zip(w.X, w.subject, w.y, strict=True)}
    assert len(owner) == len(w.X), "windows are not unique by content: the check below would be blind"
    assert set(data.splits["test"]) == {2, 4}
    for name in ("train", "val", "test"):
        X, y = data.part(name)
        subjects = set(data.splits[name])
        expected = int(np.isin(w.subject, list(subjects)).sum())
        assert len(X) == len(y) == expected > 0, name
        seen = [owner[_row_digest(x)] for x in X]
        assert {s for s, _ in seen} == subjects, name
        assert [label for _, label in seen] == y.tolist(), name  # labels travel with their windows


def test_train_stage_never_reads_a_test_subject(project: Params, tmp_path: Path) -> None:
    """Test-subject windows set to NaN: one of them in training makes the fitted standardisation and
    every weight NaN; without a leak the standardisation is exactly the training subjects'."""
    out = tmp_path / "poisoned"
    shutil.copytree(project.preprocess.out_dir, out)
    w = load_windows(out / "windows.npz")
    splits = load_split_data(out, project.preprocess.classes).splits
    w.X[np.isin(w.subject, splits["test"])] = np.nan
    save_windows(w, out / "windows.npz")
    project.preprocess.out_dir = out
    project.train.epochs = project.train.min_epochs = 1

    stages.model.train(project, show_progress=False)

    net = TrainedModel.load(project.train.out_dir / "trained").net
    assert net is not None
    for name, tensor in net.state_dict().items():
        assert torch.isfinite(tensor).all(), f"{name}: NaN from a test subject's window"
    train_X = w.X[np.isin(w.subject, splits["train"])].reshape(-1, len(w.channels)).astype(np.float64)
    np.testing.assert_allclose(net.standardize.mean.numpy(), train_X.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(net.standardize.std.numpy(), train_X.std(axis=0), rtol=1e-5)
