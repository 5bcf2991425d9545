"""train.precision and train.device on real HAPT subjects: bf16 autocast trains on the CPU and the
model it leaves (and its ONNX export) is fp32; cuda without a GPU is a clear error before any run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from har import stages
from har.config import Params
from har.errors import HarError
from har.export.onnx import export_onnx, parity
from har.stages.model import model_meta
from har.training.data import load_split_data
from har.training.distributed import resolve_device
from har.training.train import fit_model

PARITY_ATOL = 1e-4  # params.yaml export.parity_atol


def test_bf16_trains_on_cpu_and_exports_fp32(project: Params, tmp_path: Path) -> None:
    data = load_split_data(project.preprocess.out_dir, project.preprocess.classes)
    (X, y), (Xv, yv) = data.part("train"), data.part("val")
    tp = project.train
    tp.device, tp.min_epochs = "cpu", 1
    fp32, _ = fit_model(tp, model_meta(project, data), X, y, Xv, yv, epochs=3, show_progress=False)
    tp.precision = "bf16"
    bf16, rep = fit_model(tp, model_meta(project, data), X, y, Xv, yv, epochs=3, show_progress=False)

    losses = [h["train_loss"] for h in rep.history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    assert rep.val_macro_f1 > 0.3, rep.val_macro_f1  # chance is ~0.08
    # autocast was on (other numbers than fp32 from the same seed), yet the weights are fp32 on CPU
    state, reference = bf16.net.state_dict(), fp32.net.state_dict()
    assert any(not torch.equal(state[k], reference[k]) for k in state)
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in bf16.net.parameters())

    path = export_onnx(bf16, tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    weights = {i.data_type for i in graph.initializer} - {onnx.TensorProto.INT64}  # INT64: shapes
    assert weights == {onnx.TensorProto.FLOAT}
    io_types = [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)]
    assert io_types == [onnx.TensorProto.FLOAT] * 2
    assert parity(bf16, path, data.part("test")[0]) <= PARITY_ATOL


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu_is_a_clear_error(project: Params) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    project.train.device = "cuda"
    with pytest.raises(HarError, match=r"train\.device is cuda, but torch sees no GPU"):
        stages.model.train(project, show_progress=False)
    assert not (project.train.out_dir / "checkpoints").exists()  # failed before any training or run
