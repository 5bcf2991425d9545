"""Search spaces: ``tune.space.<model>`` of params.yaml, checked against the train section and turned
into Optuna distributions, grids and trial parameters.

A space is a mapping of dotted ``train.*`` keys to distributions (har.config.Distribution). Every
key is checked by setting its extreme values on the real train section and validating the result,
so a misspelt key or a range the key cannot take is a ConfigError naming ``tune.space.<model>.<key>``
before any trial runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from har.config import Distribution, Params, with_overrides
from har.errors import ConfigError


def model_space(p: Params, model: str | None = None) -> dict[str, Distribution]:
    """The checked search space of ``model`` (default: tune.model, else train.model)."""
    model = model or p.tune.model or p.train.model
    space = p.tune.space.get(model)
    if not space:
        known = ", ".join(sorted(p.tune.space)) or "none"
        raise ConfigError(f"tune.space.{model}: no search space for model {model!r} (spaces: {known})")
    for key, dist in space.items():
        for value in _extremes(dist):
            try:
                trial_params(p, model, {key: value}).train.model_params(model)
            except ConfigError as err:
                detail = "; ".join(line.strip() for line in str(err).splitlines()[1:]) or str(err)
                raise ConfigError(f"tune.space.{model}.{key}: the value {value!r} is not valid for "
                                  f"{key} ({detail})") from None
    if p.tune.sampler == "grid":
        grid(space, model)  # every dimension must be enumerable
    return space


def _extremes(dist: Distribution) -> list[Any]:
    return list(dist.choices) if dist.choices is not None else [dist.low, dist.high]


def trial_params(p: Params, model: str, values: dict[str, Any]) -> Params:
    """``p`` with train.model set to ``model`` and a trial's values applied (validated)."""
    return with_overrides(p, {"train.model": model, **values}, source="tune.space")


def grid(space: dict[str, Distribution], model: str = "") -> dict[str, list[Any]]:
    """Every dimension enumerated, for Optuna's GridSampler; ConfigError naming a continuous one."""
    out: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if dist.choices is not None:
            out[key] = list(dist.choices)
        elif dist.is_int:
            out[key] = list(range(int(dist.low), int(dist.high) + 1, int(dist.step or 1)))
        elif dist.step is not None:
            n = int(np.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
            out[key] = [round(float(dist.low + i * dist.step), 12) for i in range(n)]
        else:
            raise ConfigError(f"tune.space.{model}.{key}: the grid sampler needs choices or a step "
                              f"for a continuous range ({dist.low}..{dist.high})")
    return out


def grid_size(space: dict[str, Distribution], model: str = "") -> int:
    return int(np.prod([len(v) for v in grid(space, model).values()]))
