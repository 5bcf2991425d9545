"""The model registry: a model is one module plus its `train.<name>` section in params.yaml.

The toy model below is added exactly the way docs/models.md tells a user to add one, and it goes
through the real train → evaluate → export stages and into the serving runtime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from har import stages
from har.config import Params
from har.errors import ConfigError
from har.models import get_model, model_names

TOY_MODULE = '''
"""A toy model: the mean of each channel over the window, then a small MLP."""
from pydantic import Field
from torch import nn

from har.config import Section
from har.models import register_model


class ToyParams(Section):
    hidden: int = Field(16, ge=1)


class ToyMLP(nn.Module):
    def __init__(self, n_channels: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_channels, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x):  # (batch, time, channels), standardised by the wrapper har puts around it
        return self.net(x.mean(dim=1))


@register_model("toymlp", ToyParams)
def build(p: ToyParams, n_channels: int, n_classes: int) -> nn.Module:
    """Channel means → MLP."""
    return ToyMLP(n_channels, n_classes, p.hidden)
'''


def test_models_are_found_without_importing_torch() -> None:
    code = ("import sys; from har.config import load_params; p = load_params(); "
            "from har.models import model_names; print(model_names(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "['classic', 'cnn1d', 'deepconvlstm', 'sepcnn', 'tinyhar'] False"


def test_a_new_model_is_one_module_and_a_params_section(project: Params, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "toy_har_model.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("toy_har_model")
    assert "toymlp" in model_names() and get_model("toymlp").kind == "deep"

    project.train.model = "toymlp"
    project.train.toymlp = {"hidden": 8}
    project.train.epochs, project.train.min_epochs = 2, 1
    out = stages.model.train(project, show_progress=False)
    assert out["model"] == "toymlp" and out["n_params"] == (6 * 8 + 8) + (8 * 12 + 12)
    stages.model.evaluate(project)
    exported = stages.model.export(project)
    assert exported["parity_max_abs_diff"] <= project.export.parity_atol

    from har.serving.model import load_model

    served = load_model(str(project.export.path))
    assert served.spec.model_type == "toymlp"
    probs = served.predict_proba(np.zeros((3, served.spec.window_len, 6), np.float32))
    assert probs.shape == (3, 12) and np.allclose(probs.sum(1), 1, atol=1e-5)

    project.train.toymlp = {"hiden": 8}  # a typo in the section is a clear error naming the key
    with pytest.raises(ConfigError, match=r"train\.toymlp\.hiden: Extra inputs are not permitted"):
        project.train.model_params()


def test_unknown_model_and_section_are_config_errors() -> None:
    from har.config import load_params

    repo = Path(__file__).resolve().parents[2]
    with pytest.raises(ConfigError, match="train.model: unknown model 'nope'"):
        load_params(repo / "params.yaml", {"train.model": "nope"})
    with pytest.raises(ConfigError, match="unknown key 'cnn2d'"):
        load_params(repo / "params.yaml", {"train.cnn2d": {"channels": [8]}})
