"""int8 and ORT exports of a trained model: quality kept and measured, contract kept, bad input refused."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from har import stages
from har.config import Params, load_params
from har.contracts import WindowSpec
from har.errors import ConfigError, DataError
from har.export.cost import model_cost
from har.export.onnx import read_metadata
from har.export.quantize import check_calibration
from har.registry.gate import RegistryError
from har.training.bundle import TrainedModel
from har.training.data import load_split_data


def _trained(project: Params) -> None:
    project.train.epochs, project.train.min_epochs = 3, 1
    stages.model.train(project, show_progress=False)
    stages.model.evaluate(project)


def test_int8_export_keeps_the_contract_and_measures_its_loss(project: Params) -> None:
    _trained(project)
    project.export.quantize, project.export.ort = "int8", True
    out = stages.model.export(project)
    assert out["quantize"] == "int8" and abs(out["quant_macro_f1_drop"]) < 0.05
    assert out["quant_macro_f1_drop"] == pytest.approx(out["fp32_macro_f1"] - out["int8_macro_f1"])
    meta = read_metadata(project.export.path)
    assert meta["har.quantization"] == "int8-static-qdq"
    spec = WindowSpec.from_metadata(meta)  # the serving contract is unchanged
    sess = ort.InferenceSession(str(project.export.path))
    assert [i.name for i in sess.get_inputs()] == ["window"] and sess.get_outputs()[0].name == "probs"
    graph = onnx.load(str(project.export.path)).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    X, _ = data.part("test")
    probs = sess.run(["probs"], {"window": X[:64]})[0]
    assert probs.shape == (64, len(spec.classes)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # the ORT format beside it, loadable by onnxruntime
    ort_path = project.export.path.with_suffix(".ort")
    assert out["ort_path"] == str(ort_path) and ort_path.stat().st_size > 1000
    assert ort.InferenceSession(str(ort_path)).run(["probs"], {"window": X[:4]})[0].shape == (4, 12)
    # cost: multiply-adds counted by torch, parameters, the int8 file's size
    assert out["macs"] > 1e5 and out["params"] > 1e3
    assert out["onnx_bytes"] == project.export.path.stat().st_size
    # the register gate lets a small loss through …
    assert stages.registry.register(project)["created"]


def test_register_refuses_an_int8_model_that_lost_too_much(project: Params) -> None:
    report = {"quantize": "int8", "quant_macro_f1_drop": 0.02, "fp32_macro_f1": 0.80, "int8_macro_f1": 0.78,
              "run_id": "x", "model_uri": "models:/m-x"}
    project.export.report_path.parent.mkdir(parents=True, exist_ok=True)
    project.export.report_path.write_text(json.dumps(report))
    with pytest.raises(RegistryError, match=r"loses 0\.0200 test macro-F1 .*0\.8000 → 0\.7800.*"
                                            r"registry\.max_quant_macro_f1_drop 0\.005"):
        stages.registry.register(project)


def test_calibration_with_the_wrong_channels_is_refused(project: Params) -> None:
    _trained(project)
    model = TrainedModel.load(project.train.out_dir / "trained")
    spec = model.meta.window_spec
    X = np.zeros((32, spec.window_len, len(spec.channels)), np.float32)
    with pytest.raises(DataError, match="calibration windows have channels"):
        check_calibration(spec, X, list(reversed(spec.channels)), "windows.npz")
    with pytest.raises(DataError, match=r"calibration windows have shape \[64, 6\]"):
        check_calibration(spec, X[:, :64], spec.channels, "windows.npz")
    cost = model_cost(model)
    assert cost["macs"] > 0 and cost["onnx_bytes"] is None


def test_unknown_quantisation_mode_is_a_config_error(project: Params, tmp_path) -> None:
    with pytest.raises(ConfigError, match="export.quantize"):
        load_params(tmp_path / "params.yaml", {"export.quantize": "int4"})
