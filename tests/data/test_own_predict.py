"""`har predict` on own recordings: the model's channels decide what a file must have (an acc-only
model takes acc-only files, a 6-channel one refuses them naming the gyro), and the units pass the
plausibility check. Models are small real ONNX files in the export contract, run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from har.contracts import ACC, SENSOR_CHANNELS, WindowSpec
from har.data.units import STANDARD_GRAVITY
from har.errors import DataError
from har.serving.model import open_onnx
from har.serving.predict import predict_files

CLASSES = ["still", "moving"]


def _onnx(path: Path, channels: list[str], window_len: int = 50) -> Path:
    """window [batch, T, C] → per-channel std → linear → softmax: 'moving' when the signal varies."""
    c = len(channels)
    weights = np.zeros((c, 2), np.float32)
    weights[:, 1] = 40.0
    bias = np.array([1.0, 0.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["window", "axes"], ["mean"], keepdims=1),
         helper.make_node("Sub", ["window", "mean"], ["centred"]),
         helper.make_node("Mul", ["centred", "centred"], ["sq"]),
         helper.make_node("ReduceMean", ["sq", "axes"], ["var"], keepdims=0),
         helper.make_node("MatMul", ["var", "w"], ["lin"]),
         helper.make_node("Add", ["lin", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
        "tiny",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", window_len, c])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(np.array([1], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = WindowSpec(classes=CLASSES, channels=channels, rate_hz=50.0, window_len=window_len,
                      overlap=0.5, window_s=window_len / 50.0, model_type="tiny")
    helper.set_model_props(model, spec.to_metadata())
    onnx.save(model, path)
    return path


def _phone_csv(path: Path, gyro: bool = False) -> Path:
    """20 s at 100 Hz, epoch ms, m/s²: still, then moving."""
    t = np.arange(0, 20, 0.01)
    moving = t >= 10
    wobble = np.where(moving, 0.5 * np.sin(2 * np.pi * 2 * t), 0.0)
    frame = {"timestamp": 1.7e12 + t * 1000, "acc_x": (1 + wobble) * STANDARD_GRAVITY,
             "acc_y": 0.0, "acc_z": 0.1 * STANDARD_GRAVITY,
             "label": np.where(moving, "moving", "still")}
    if gyro:
        frame.update(gyro_x=0.0, gyro_y=0.0, gyro_z=np.where(moving, 1.0, 0.0))
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


UNITS = {"acc_unit": "m/s2", "time_unit": "ms", "progress": False}


def test_acc_only_model_predicts_acc_only_files(tmp_path: Path) -> None:
    model = open_onnx(_onnx(tmp_path / "acc.onnx", list(ACC)), "acc.onnx")
    res = predict_files([_phone_csv(tmp_path / "rec.csv")], model, tmp_path / "tl.csv", **UNITS)
    assert set(res.timeline["activity"]) == {"still", "moving"}
    assert res.agreement["0/rec"] > 0.9
    # a file with a gyroscope too: the acc-only model takes the channels it needs
    res = predict_files([_phone_csv(tmp_path / "six.csv", gyro=True)], model, tmp_path / "tl6.csv", **UNITS)
    assert res.agreement["0/six"] > 0.9


def test_six_channel_model_refuses_acc_only_file_naming_the_gyro(tmp_path: Path) -> None:
    model = open_onnx(_onnx(tmp_path / "six.onnx", list(SENSOR_CHANNELS)), "six.onnx")
    with pytest.raises(DataError, match=r"rec.csv: the model needs channels \['gyro_x', 'gyro_y', "
                                        r"'gyro_z'\], which the file lacks"):
        predict_files([_phone_csv(tmp_path / "rec.csv")], model, tmp_path / "tl.csv", **UNITS)
    assert not (tmp_path / "tl.csv").exists()


def test_predict_refuses_implausible_units(tmp_path: Path) -> None:
    model = open_onnx(_onnx(tmp_path / "acc.onnx", list(ACC)), "acc.onnx")
    with pytest.raises(DataError, match=r"look like m/s2; set data.acc_unit: m/s2"):
        predict_files([_phone_csv(tmp_path / "rec.csv")], model, tmp_path / "tl.csv", time_unit="ms",
                      progress=False)
    with pytest.raises(DataError, match=r"look like milliseconds; set data.time_unit: ms"):
        predict_files([_phone_csv(tmp_path / "rec.csv")], model, tmp_path / "tl.csv", acc_unit="m/s2",
                      progress=False)
