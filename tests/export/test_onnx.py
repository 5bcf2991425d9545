"""ONNX export (har/export/onnx.py) of a small cnn1d trained for one epoch on real HAPT windows: the
file describes itself (metadata), takes any batch size, the parity check tells the exported model
from a doctored one, and latency comes back as batch-1 percentiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from har.config import TrainParams
from har.contracts import ONNX_INPUT, ONNX_OUTPUT, WindowSpec
from har.errors import DataError
from har.export.onnx import export_onnx, latency_ms, parity, read_metadata, session
from har.training.bundle import ModelMeta, TrainedModel
from har.training.data import SplitData, load_split_data
from har.training.train import fit_model

CLASSES = 12
PARITY_ATOL = 1e-4  # params.yaml export.parity_atol


@pytest.fixture(scope="module")
def data(processed_root: Path) -> SplitData:
    from har.config import load_params

    classes = load_params(processed_root / "params.yaml").preprocess.classes
    return load_split_data(processed_root / "data/processed", classes)


@pytest.fixture(scope="module")
def trained(data: SplitData) -> TrainedModel:
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    tp = TrainParams(model="cnn1d", cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1},
                     epochs=1, min_epochs=1)
    w = data.windows
    meta = ModelMeta(model="cnn1d", classes=data.classes, channels=w.channels, rate_hz=w.rate_hz,
                     window_len=int(w.X.shape[1]), window_s=2.56, overlap=0.5,
                     test_subjects=data.splits["test"], train_params=tp.model_dump(mode="json"),
                     transitions={"SIT_TO_STAND": {"leaves": ["SITTING"], "enters": ["STANDING"]}})
    model, _ = fit_model(tp, meta, X[::2], y[::2], Xv, yv, show_progress=False)
    return model


@pytest.fixture(scope="module")
def exported(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(trained, tmp_path_factory.mktemp("export") / "model.onnx")


@pytest.fixture(scope="module")
def X_test(data: SplitData) -> np.ndarray:
    return data.part("test")[0]


def test_metadata_describes_the_model(trained: TrainedModel, exported: Path) -> None:
    proto = onnx.load(str(exported))
    assert proto.producer_name == "har"
    assert read_metadata(exported) == trained.meta.onnx_metadata()
    spec = WindowSpec.from_metadata(read_metadata(exported))
    assert spec == trained.meta.window_spec
    assert (spec.model_type, spec.window_len, spec.rate_hz) == ("cnn1d", 128, 50.0)
    assert spec.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert len(spec.classes) == CLASSES
    # the transition grammar travels with the model to the API's timeline
    assert spec.transitions == {"SIT_TO_STAND": {"leaves": ["SITTING"], "enters": ["STANDING"]}}
    assert sorted(p.name for p in exported.parent.iterdir()) == ["model.onnx"]  # no temp file left


def test_batch_dimension_is_dynamic(exported: Path, X_test: np.ndarray) -> None:
    sess = session(exported)
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, out.name) == (ONNX_INPUT, ONNX_OUTPUT)
    assert inp.type == "tensor(float)" and isinstance(inp.shape[0], str) and inp.shape[1:] == [128, 6]
    batch = sess.run([ONNX_OUTPUT], {ONNX_INPUT: X_test[:257]})[0]
    assert batch.shape == (257, CLASSES) and batch.dtype == np.float32
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    for n in (1, 3):  # a window's probabilities do not depend on the rest of its batch
        small = sess.run([ONNX_OUTPUT], {ONNX_INPUT: X_test[:n]})[0]
        assert small.shape == (n, CLASSES)
        np.testing.assert_allclose(small, batch[:n], atol=1e-6)


def test_parity_passes_the_export_and_refuses_a_doctored_model(trained: TrainedModel, exported: Path,
                                                               X_test: np.ndarray, tmp_path: Path) -> None:
    assert parity(trained, exported, X_test) <= PARITY_ATOL
    # doctor the largest weight tensor by 2 %: a quiet change a checksum-less pipeline would ship
    proto = onnx.load(str(exported))
    init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.02), init.name))
    doctored = tmp_path / "doctored.onnx"
    onnx.save(proto, str(doctored))
    diff = parity(trained, doctored, X_test)
    # measured 4e-3 (40 × the tolerance) for this model: refused with a wide margin
    assert diff > 10 * PARITY_ATOL, f"a 2 % weight change moved probabilities by only {diff:.1e}"


def test_latency_is_batch_one_percentiles(exported: Path, X_test: np.ndarray) -> None:
    lat = latency_ms(exported, X_test[0], runs=30)
    assert set(lat) == {"latency_p50_ms", "latency_p99_ms"}
    assert all(isinstance(v, float) for v in lat.values())
    assert 0 < lat["latency_p50_ms"] <= lat["latency_p99_ms"]


def test_missing_or_broken_onnx_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.onnx: ONNX model not found"):
        session(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(DataError, match=r"junk\.onnx: not a loadable ONNX model"):
        session(tmp_path / "junk.onnx")
