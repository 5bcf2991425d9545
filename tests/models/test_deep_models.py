"""Deep model shapes and sizes, the standardisation inside the model, unknown names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from har.config import TrainParams
from har.models import build_model, get_model, model_names
from har.models._layers import n_parameters

DEEP_MODELS = [n for n in model_names() if get_model(n).kind == "deep"]


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
