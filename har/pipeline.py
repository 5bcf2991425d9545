"""The pipeline as dvc.yaml declares it: stages in order, each with its deps, params and outputs.

dvc.yaml is the one declaration. `dvc repro` reads it directly; `har run`, the Prefect flow and the
benchmarks read it through ``load_pipeline``, which resolves DVC's ``${key}`` templating from the
effective params (params.yaml plus any overrides) the way DVC resolves it from params.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from har.config import Params
from har.errors import ConfigError

DVC_YAML = Path("dvc.yaml")
# The checkout (or site-packages) holding the har and flows packages. A project folder without its
# own dvc.yaml (a scratch run of `har run` or the flow) uses the checkout's, and code deps (paths
# under har/ or flows/) always mean the code that runs, wherever the data lives.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("har", "flows")
_TEMPLATE = re.compile(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}")


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[Path, ...]
    params: tuple[str, ...]  # dotted keys or whole sections of params.yaml
    outs: tuple[Path, ...]  # everything it writes: outs, metrics and plots

    def param_values(self, p: Params) -> dict[str, Any]:
        """The values of this stage's params in ``p`` (what DVC compares in dvc.lock)."""
        doc = p.model_dump(mode="json", by_alias=True)
        return {key: _lookup(doc, key, "params.yaml") for key in self.params}


def _lookup(doc: dict[str, Any], dotted: str, source: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{source}: no key {dotted!r} (referenced by dvc.yaml)")
        node = node[part]
    return node


def _resolve(text: str, doc: dict[str, Any]) -> str:
    return _TEMPLATE.sub(lambda m: str(_lookup(doc, m.group(1), "params.yaml")), text)


def is_code(path: Path) -> bool:
    return not path.is_absolute() and bool(path.parts) and path.parts[0] in CODE_PACKAGES


def _paths(entries: list[Any] | None, doc: dict[str, Any]) -> list[Path]:
    """dvc.yaml path lists: plain strings or one-key mappings ``{path: {options}}``; code paths
    are placed in the source tree, data paths stay relative to the project (the working directory)."""
    out = []
    for entry in entries or []:
        raw = next(iter(entry)) if isinstance(entry, dict) else entry
        path = Path(_resolve(str(raw), doc))
        out.append(SOURCE_ROOT / path if is_code(path) else path)
    return out


def find_dvc_yaml(dvc_yaml: Path | None = None) -> Path:
    """``dvc_yaml`` if given, else the project's ./dvc.yaml, else the checkout's."""
    for candidate in ([dvc_yaml] if dvc_yaml else [DVC_YAML, SOURCE_ROOT / DVC_YAML]):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{dvc_yaml or DVC_YAML}: not found; run from the project checkout")


def load_pipeline(p: Params, dvc_yaml: Path | None = None) -> list[Stage]:
    """The stages of dvc.yaml in declaration order (which dvc.yaml keeps topological: a stage
    only depends on outputs of stages above it; ConfigError otherwise)."""
    dvc_yaml = find_dvc_yaml(dvc_yaml)
    raw = yaml.safe_load(dvc_yaml.read_text()) or {}
    doc = p.model_dump(mode="json", by_alias=True)
    stages: list[Stage] = []
    produced: dict[Path, str] = {}
    outs_of_all = {out: name for name, spec in (raw.get("stages") or {}).items()
                   for key in ("outs", "metrics", "plots") for out in _paths(spec.get(key), doc)}
    for name, spec in (raw.get("stages") or {}).items():
        stage = Stage(name=name, cmd=_resolve(spec["cmd"], doc),
                      deps=tuple(_paths(spec.get("deps"), doc)),
                      params=tuple(str(k) for k in spec.get("params") or []),
                      outs=tuple(out for key in ("outs", "metrics", "plots")
                                 for out in _paths(spec.get(key), doc)))
        for dep in stage.deps:
            if dep in outs_of_all and dep not in produced:
                raise ConfigError(f"{dvc_yaml}: stage {name!r} depends on {dep}, an output of the later "
                                  f"stage {outs_of_all[dep]!r}; keep stages in pipeline order")
        produced.update(dict.fromkeys(stage.outs, name))
        stages.append(stage)
    return stages


def stage_names(p: Params, dvc_yaml: Path | None = None) -> list[str]:
    return [s.name for s in load_pipeline(p, dvc_yaml)]


def stages_until(p: Params, last: str | None, dvc_yaml: Path | None = None) -> list[Stage]:
    """The stages up to and including ``last`` (all when None); ConfigError naming the stages."""
    stages = load_pipeline(p, dvc_yaml)
    if last is None:
        return stages
    names = [s.name for s in stages]
    if last not in names:
        raise ConfigError(f"no stage {last!r}; the pipeline has {', '.join(names)}")
    return stages[:names.index(last) + 1]
