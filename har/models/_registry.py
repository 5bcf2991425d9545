"""The model registry: a model is one module of this package (or any module that calls
``register_model``) plus its ``train.<name>`` section in params.yaml.

Names are discovered without importing anything: every module of ``har.models`` whose name does not
start with an underscore is a model of that name. The module (and torch with it) is imported only
when the model is built or its params section is validated, so `har --help`, `har serve` and config
parsing never pay for torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

PACKAGE = "har.models"
_HERE = Path(__file__).parent
ModelKind = Literal["deep", "classic"]


@dataclass(frozen=True)
class ModelEntry:
    """``build`` makes the model from its params section: for ``deep`` models
    ``build(params, n_channels, n_classes) -> torch.nn.Module`` (the backbone; normalisation is added
    around it), for ``classic`` ones ``build(params, channels, window_len, rate_hz, n_classes, seed)``."""

    name: str
    params: type[BaseModel]
    build: Callable[..., Any]
    kind: ModelKind = "deep"
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, params: type[BaseModel], kind: ModelKind = "deep",
                   description: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a model's build function: ``@register_model("cnn1d", CNN1DParams)``."""

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.build.__module__ != build.__module__:
            raise ValueError(f"model {name!r} is registered twice ({existing.build.__module__} and "
                             f"{build.__module__})")
        _REGISTRY[name] = ModelEntry(name, params, build, kind, description or (build.__doc__ or "").strip())
        return build

    return decorate


def model_names() -> list[str]:
    """Every model: the modules of har/models (not imported) and whatever registered itself."""
    discovered = [m.name for m in pkgutil.iter_modules([str(_HERE)]) if not m.name.startswith("_")]
    return sorted(set(discovered) | set(_REGISTRY))


def get_model(name: str) -> ModelEntry:
    """The entry for ``name`` (importing its module on first use); ValueError naming the known ones."""
    if name not in _REGISTRY and name in model_names():
        importlib.import_module(f"{PACKAGE}.{name}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None
