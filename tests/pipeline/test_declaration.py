"""dvc.yaml is the one declaration of the pipeline, and what derives from it agrees with DVC.

- DVC and the Prefect flow invalidate the same stages for an edit to any code file (the flow's
  cache keys are computed on a copy of the code, DVC's view comes from DVC's own parse of dvc.yaml);
- every stage's deps cover every module its function runs (found from the function's references,
  then the modules those import), so an edit can never come back stale from either cache;
- the stage functions, the flow's tasks and `har run` follow dvc.yaml's stages and order.
"""

from __future__ import annotations

import dis
import importlib
import inspect
import shutil
import sys
import types
from pathlib import Path

import pytest

from har import contracts, pipeline
from har.config import load_params
from har.pipeline import SOURCE_ROOT, load_pipeline
from har.stages import STAGES

REPO = SOURCE_ROOT
# Modules every stage uses to name, parse, write and log its results, not to compute them: they
# are the environment of every stage (like the Python version), not a dep of any one stage.
INFRASTRUCTURE = {"har", "har.config", "har.contracts", "har.errors", "har.io", "har.logging",
                  "har.tracking", "har.pipeline", "har.stages"}


def _code_files(root: Path) -> list[Path]:
    return sorted(f for pkg in ("har", "flows") for f in (root / pkg).rglob("*.py")
                  if "__pycache__" not in f.parts)


@pytest.fixture(scope="module")
def code_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code-copy")
    for name in ("har", "flows"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    return root


def _dvc_invalidated(root: Path) -> dict[Path, set[str]]:
    """For each code file: the stages DVC re-runs when it changes (DVC parses dvc.yaml itself)."""
    from dvc.repo import Repo

    repo = Repo.init(str(root), no_scm=True, force=True)
    try:
        deps = {stage.name: [Path(d.fs_path) for d in stage.deps] for stage in repo.index.stages}
    finally:
        repo.close()
    return {f: {name for name, paths in deps.items()
                if any(f == d or d in f.parents for d in paths)} for f in _code_files(root)}


def _prefect_invalidated(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[Path, set[str]]:
    """For each code file: the flow tasks whose cache key changes when the file is edited."""
    from flows.cache import stage_key

    monkeypatch.setattr(pipeline, "SOURCE_ROOT", root)
    monkeypatch.chdir(root)
    p = load_params(root / "params.yaml")
    stages = load_pipeline(p, root / "dvc.yaml")
    before = {s.name: stage_key(s, p) for s in stages}
    out = {}
    for f in _code_files(root):
        original = f.read_bytes()
        f.write_bytes(original + b"\n# an edit\n")
        try:
            out[f] = {s.name for s in stages if stage_key(s, p) != before[s.name]}
        finally:
            f.write_bytes(original)
    return out


def test_dvc_and_prefect_invalidate_the_same_stages(code_copy: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dvc = _dvc_invalidated(code_copy)
    prefect = _prefect_invalidated(code_copy, monkeypatch)
    disagree = {str(f.relative_to(code_copy)): (sorted(dvc[f]), sorted(prefect[f]))
                for f in dvc if dvc[f] != prefect[f]}
    assert not disagree, f"file: (DVC re-runs, Prefect re-runs) {disagree}"
    # and the comparison is not vacuous: editing the training loop re-runs train and after it
    loop = code_copy / "har" / "training" / "loop.py"
    assert {"train", "evaluate"} <= dvc[loop]
    assert dvc[code_copy / "har" / "stages" / "registry.py"] == {"register"}


def _har_modules(obj: object) -> set[str]:
    """The har modules ``obj`` (a function or class) runs: the modules of everything its code refers
    to (globals, ``module.attribute``, imports inside the function), followed through the code of
    each function and class it reaches."""
    stack: list[object] = [obj]
    seen: set[int] = set()
    modules: set[str] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        module = getattr(item, "__module__", None)
        if not (module and module.startswith("har")):
            continue
        modules.add(module)
        if inspect.isclass(item):
            for base in item.__mro__[1:]:
                stack.append(base)
            for member in vars(item).values():
                stack += [getattr(member, a) for a in ("__func__", "fget", "fset") if hasattr(member, a)]
                if inspect.isfunction(member):
                    stack.append(member)
            continue
        fn = inspect.unwrap(item) if callable(item) else item
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        globals_, attrs, imports, todo = set(), set(), set(), [code]
        while todo:  # the function's own code and every nested function or lambda in it
            c = todo.pop()
            for ins in dis.get_instructions(c):
                if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    globals_.add(ins.argval)
                elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"):
                    attrs.add(ins.argval)
                elif ins.opname == "IMPORT_NAME":
                    imports.add(ins.argval)
            todo += [k for k in c.co_consts if isinstance(k, types.CodeType)]
        used_modules = [sys.modules[n] for n in imports if n.startswith("har") and n in sys.modules]
        for name in globals_:
            ref = fn.__globals__.get(name)
            if isinstance(ref, types.ModuleType):
                used_modules.append(ref)
            elif ref is not None:
                stack.append(ref)
        for mod in used_modules:  # `module.attribute`, and `from har.x import y` inside the function
            if mod.__name__.startswith("har"):
                modules.add(mod.__name__)
                stack += [vars(mod)[n] for n in attrs if n in vars(mod)]
    return modules


def _module_file(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).resolve()


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_declares_the_code_it_runs(stage: str) -> None:
    p = load_params(REPO / "params.yaml")
    (declared,) = [s for s in load_pipeline(p, REPO / "dvc.yaml") if s.name == stage]
    deps = [d.resolve() for d in declared.deps]
    needed = {m: _module_file(m) for m in _har_modules(STAGES[stage]) - INFRASTRUCTURE}
    assert _module_file(STAGES[stage].__module__) in needed.values()
    missing = sorted(m for m, f in needed.items() if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"dvc.yaml stage {stage!r} runs {missing} but does not list them in its deps"


def test_stage_functions_tasks_and_har_run_follow_dvc_yaml() -> None:
    import yaml

    declared = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    p = load_params(REPO / "params.yaml")
    assert [s.name for s in load_pipeline(p, REPO / "dvc.yaml")] == declared
    assert list(STAGES) == declared  # one function per stage, named like it
    for s in load_pipeline(p, REPO / "dvc.yaml"):
        assert s.cmd.startswith("har "), s.cmd  # a har command, which calls STAGES[name]
    # the flow has no list of stages of its own: only orchestration choices about declared ones
    import flows.training

    assert set(declared) >= flows.training.RETRIED | flows.training.UNCACHED


def test_preprocess_outputs_are_the_contract_files() -> None:
    p = load_params(REPO / "params.yaml")
    (pre,) = [s for s in load_pipeline(p, REPO / "dvc.yaml") if s.name == "preprocess"]
    names = {o.name for o in pre.outs if o.parent == p.preprocess.out_dir}
    assert names - {p.monitor.reference_path.name} == set(contracts.PROCESSED_FILES)


def test_out_of_order_stages_are_refused(tmp_path: Path) -> None:
    import yaml

    from har.errors import ConfigError

    raw = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = raw["stages"]
    raw["stages"] = {"train": stages["train"], **{k: v for k, v in stages.items() if k != "train"}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="stage 'train' depends on .*an output of the later stage"):
        load_pipeline(load_params(REPO / "params.yaml"), tmp_path / "dvc.yaml")


def test_architecture_diagram_is_generated_from_dvc_yaml() -> None:
    """docs/architecture.md shows `dvc dag --mermaid`, not a drawing (`make dag` regenerates it)."""
    import subprocess

    res = subprocess.run([sys.executable, str(REPO / "docs" / "tools" / "render_dag.py"), "--check"],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, "docs/architecture.md's diagram is stale: run `make dag`"


def test_the_tune_stage_declares_the_code_it_runs() -> None:
    """tune/dvc.yaml (run only when asked: `dvc repro tune/dvc.yaml`) lists every har module the
    search runs, like the pipeline's stages, and runs from the project root with its params.yaml."""
    from har.stages.tune import tune

    p = load_params(REPO / "params.yaml")
    (declared,) = load_pipeline(p, REPO / "tune" / "dvc.yaml")
    assert declared.name == "tune" and declared.cmd == "har tune" and "tune" in declared.params
    deps = [d.resolve() for d in declared.deps]
    needed = {m: _module_file(m) for m in _har_modules(tune) - INFRASTRUCTURE}
    missing = sorted(m for m, f in needed.items() if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"tune/dvc.yaml runs {missing} but does not list them in its deps"
    assert {o.name for o in declared.outs} >= {"best_params.yaml", "study.json"}
