"""Models, one module each, found by the registry (``_registry``): a feature + scikit-learn
baseline (``classic``) and torch networks (``cnn1d``, ``deepconvlstm``, ``tinyhar``).

To add a model, write ``har/models/<name>.py`` with its params class and a build function decorated
with ``register_model``, and give it a ``train.<name>`` section in params.yaml (docs/models.md).
Importing this package imports no model module (and so no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from har.models._registry import ModelEntry, get_model, model_names, register_model

if TYPE_CHECKING:
    from har.config import TrainParams
    from har.models._layers import HarNet

__all__ = ["ModelEntry", "build_model", "get_model", "model_names", "register_model"]


def build_model(name: str, tp: TrainParams, n_channels: int, n_classes: int) -> HarNet:
    """A deep model by name, sized by its params.yaml section (``train.<name>``), with input
    standardisation in front of it."""
    from har.models._layers import HarNet

    entry = get_model(name)
    if entry.kind != "deep":
        deep = [n for n in model_names() if get_model(n).kind == "deep"]
        raise ValueError(f"train.model: {name!r} is not a deep model; deep models: {deep}")
    return HarNet(entry.build(tp.model_params(name), n_channels, n_classes), n_channels)
