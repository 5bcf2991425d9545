"""Training on real HAPT subjects: the loss falls, resume is exact, bad inputs are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from har.config import Params
from har.errors import DataError, HarError
from har.models import build_model
from har.preprocess.windows import load_windows, save_windows
from har.training.bundle import ModelMeta, TrainedModel
from har.training.data import load_split_data
from har.training.train import fit_model


def _meta(p: Params, data, model: str) -> ModelMeta:
    w = data.windows
    return ModelMeta(model=model, classes=p.preprocess.classes, channels=w.channels, rate_hz=w.rate_hz,
                     window_len=w.X.shape[1], window_s=p.preprocess.window_s, overlap=p.preprocess.overlap,
                     train_params=p.train.model_dump(mode="json"))


def test_loss_falls_and_beats_chance(project: Params) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    project.train.augment.p = 0.0
    _, rep = fit_model(project.train, _meta(project, data, "cnn1d"), X, y, Xv, yv, epochs=4,
                       show_progress=False)
    losses = [h["train_loss"] for h in rep.history]
    assert losses[-1] < 0.7 * losses[0], losses
    # 12 classes: chance macro-F1 is well under 0.1 on the validation subject
    assert rep.val_macro_f1 > 0.4


def test_label_smoothing_and_mixup_still_learn(project: Params) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    project.train.augment.p = 0.0
    plain, _ = fit_model(project.train, _meta(project, data, "cnn1d"), X[:400], y[:400], Xv, yv, epochs=2,
                         show_progress=False)
    project.train.label_smoothing, project.train.mixup_alpha = 0.1, 0.2
    tp = project.train
    _, rep = fit_model(tp, _meta(project, data, "cnn1d"), X, y, Xv, yv, epochs=4, show_progress=False)
    assert rep.val_macro_f1 > 0.4, rep.history
    # the regularised loss is another loss: same data and seed, other weights
    smoothed, _ = fit_model(tp, _meta(project, data, "cnn1d"), X[:400], y[:400], Xv, yv, epochs=2,
                            show_progress=False)
    a, b = plain.net.state_dict(), smoothed.net.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_equals_uninterrupted(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    X, y = X[:400], y[:400]  # keep it quick; the point is bit-identical weights
    tp = project.train
    tp.patience = 10
    tp.mixup_alpha = 0.2  # its draws come from the epoch's seeded stream too
    meta = _meta(project, data, "cnn1d")

    full, _ = fit_model(tp, meta, X, y, Xv, yv, epochs=4, checkpoint_dir=tmp_path / "a",
                        show_progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch: int, _: dict) -> None:
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit_model(tp, meta, X, y, Xv, yv, epochs=4, checkpoint_dir=tmp_path / "b",
                  on_epoch=stop_after_two, show_progress=False)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 1  # 0-based
    # Per-epoch seeding makes a restart from scratch bit-identical too, so equal weights alone cannot
    # tell a resume from a restart: the resumed call must run only the two missing epochs.
    ran: list[int] = []
    resumed, rep = fit_model(tp, meta, X, y, Xv, yv, epochs=4, checkpoint_dir=tmp_path / "b",
                             resume=True, on_epoch=lambda e, _: ran.append(e), show_progress=False)
    assert ran == [3, 4], f"resume ran epochs {ran}"
    assert rep.epochs_run == 4 and [h["epoch"] for h in rep.history] == [1, 2, 3, 4]
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_other_params(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    meta = _meta(project, data, "cnn1d")
    fit_model(project.train, meta, X[:200], y[:200], Xv, yv, epochs=1, checkpoint_dir=tmp_path,
              show_progress=False)
    for key, value in (("mixup_alpha", 0.2), ("lr", 0.01)):  # a setting absent from old digests, too
        setattr(project.train, key, value)
        with pytest.raises(HarError, match="different params"):
            fit_model(project.train, meta, X[:200], y[:200], Xv, yv, epochs=1, checkpoint_dir=tmp_path,
                      resume=True, show_progress=False)
    with pytest.raises(HarError, match="no checkpoint"):
        fit_model(project.train, meta, X[:200], y[:200], Xv, yv, epochs=1,
                  checkpoint_dir=tmp_path / "none", resume=True, show_progress=False)


def _copy_processed(project: Params, tmp_path: Path) -> Path:
    out = tmp_path / "processed"
    shutil.copytree(project.preprocess.out_dir, out)
    return out


def test_unknown_class_in_windows(project: Params, tmp_path: Path) -> None:
    out = _copy_processed(project, tmp_path)
    w = load_windows(out / "windows.npz")
    w.y[5] = 12  # one past the 12 HAPT classes
    save_windows(w, out / "windows.npz")
    with pytest.raises(DataError, match=r"windows\.npz: 1 windows have a class index outside 0\.\.11"):
        load_split_data(out, project.preprocess.classes)


def test_classes_differ_from_params(project: Params, tmp_path: Path) -> None:
    out = _copy_processed(project, tmp_path)
    with pytest.raises(DataError, match="label_map.json: classes"):
        load_split_data(out, project.preprocess.classes[:6])


def test_wrong_channel_count_for_model(project: Params) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    meta = _meta(project, data, "cnn1d")
    model = TrainedModel(meta, net=build_model("cnn1d", project.train, 6, 12).eval())
    with pytest.raises(DataError, match=r"expects \(window_len=128, channels=6"):
        model.predict_proba(data.windows.X[:4, :, :3])


def test_model_file_that_is_not_a_model(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    meta = _meta(project, data, "cnn1d")
    model = TrainedModel(meta, net=build_model("cnn1d", project.train, 6, 12).eval())
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(DataError, match=r"model\.pt: not a torch model checkpoint"):
        TrainedModel.load(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"meta\.json: not a har model description"):
        TrainedModel.load(tmp_path / "m")
    with pytest.raises(DataError, match="no meta.json"):
        TrainedModel.load(tmp_path / "empty")


def test_weights_that_do_not_fit(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    meta = _meta(project, data, "cnn1d")
    TrainedModel(meta, net=build_model("cnn1d", project.train, 6, 12)).save(tmp_path / "m")
    desc = json.loads((tmp_path / "m" / "meta.json").read_text())
    desc["model"] = "tinyhar"
    (tmp_path / "m" / "meta.json").write_text(json.dumps(desc))
    with pytest.raises(DataError, match="weights do not fit a tinyhar model"):
        TrainedModel.load(tmp_path / "m")


def test_save_load_roundtrip(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    torch.manual_seed(0)
    net = build_model("tinyhar", project.train, 6, 12).eval()
    model = TrainedModel(_meta(project, data, "tinyhar"), net=net)
    model.save(tmp_path / "m")
    again = TrainedModel.load(tmp_path / "m")
    X = data.windows.X[:16]
    assert np.array_equal(model.predict_proba(X), again.predict_proba(X))
