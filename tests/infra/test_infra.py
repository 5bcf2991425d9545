"""Static consistency checks for infra/: what the real validators cannot know.

The tools themselves check the files in test_infra_validate.py (`docker compose config`, `kubectl
kustomize`, kubernetes-validate) and test_images.py installs each image into a fresh venv and runs its
commands. Here: the compose file, Dockerfiles and k8s manifests against each other, against
pyproject.toml and against the CLIs actually installed (`har`, `mlflow`, `prefect` --help, run in
parallel so the module stays fast; `mlflow server`'s options are read from its installed source, since
importing mlflow alone takes seconds). A missing CLI fails: it is a broken install.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
K8S = INFRA / "k8s"
DOCKERFILES = sorted((INFRA / "docker").glob("*.Dockerfile"))

VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|ROOT_USER", re.I)
URL_CRED_RE = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_text() -> str:
    """Every string value of the compose file (comments excluded), for ${VAR} scanning."""
    return "\n".join(_strings(_compose()))


def _env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _strings(node):
    """Every string in a parsed YAML tree (keys included)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def _env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _command(service: dict) -> str:
    parts = [service.get("entrypoint"), service.get("command")]
    text = []
    for p in parts:
        if isinstance(p, list):
            text.append(" ".join(map(str, p)))
        elif p:
            text.append(str(p))
    return " ".join(text)


def _k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _dockerfile_runs(path: Path) -> list[str]:
    """RUN instructions with line continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [ln.strip()[4:] for ln in text.splitlines() if ln.strip().startswith("RUN ")]


# --------------------------------------------------------------------------- CLI help (parallel)
PREFECT_HELP = """
import contextlib, io, json, sys
from prefect.cli import app
out = {}
for args in (["server", "start"], ["worker", "start"], ["work-pool", "create"]):
    buf, rc = io.StringIO(), 0
    with contextlib.redirect_stdout(buf):
        try:
            sys.argv = ["prefect", *args, "--help"]
            app()
        except SystemExit as e:
            rc = e.code or 0
    out["prefect " + " ".join(args)] = [rc, buf.getvalue()]
print(json.dumps(out))
"""
HELP_CMDS = {
    "har serve": [sys.executable, "-m", "har.cli", "serve", "--help"],
    "har pipeline serve": [sys.executable, "-m", "har.cli", "pipeline", "serve", "--help"],
    "har pipeline run": [sys.executable, "-m", "har.cli", "pipeline", "run", "--help"],
    # the installed prefect CLI, imported once, renders the --help of all three subcommands
    "prefect": [sys.executable, "-c", PREFECT_HELP],
}


@pytest.fixture(scope="module")
def helps() -> dict[str, tuple[int, str]]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb", "DO_NOT_TRACK": "1",
           "MLFLOW_ENABLE_TELEMETRY": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, cmd in HELP_CMDS.items()}
    out = {}
    for name, p in procs.items():
        text, _ = p.communicate(timeout=60)
        if name == "prefect":
            assert p.returncode == 0, text[-2000:]
            out.update({k: tuple(v) for k, v in json.loads(text.splitlines()[-1]).items()})
        else:
            out[name] = (p.returncode, text)
    return out


def _flags(cmdline: str, prog: str) -> list[str]:
    """--flags following `prog` in a command line, up to a shell separator."""
    tail = cmdline.split(prog, 1)[1]
    tail = re.split(r"[;&|\n]", tail, maxsplit=1)[0]
    return re.findall(r"(--[a-z][a-z0-9-]*)", tail)


# --------------------------------------------------------------------------- compose
def test_compose_parses_with_expected_services():
    doc = _compose()
    assert "version" not in doc, "compose spec: no top-level `version:`"
    services = doc["services"]
    for name in ["postgres", "minio", "minio-init", "mlflow", "prefect-server", "prefect-worker",
                 "pipeline-serve", "api"]:
        assert name in services, name
    # undeclared named volumes and depends_on on unknown services: `docker compose config` rejects
    # them (tests/infra/test_infra_validate.py)


def test_compose_build_dockerfiles_and_ignore_files_exist():
    built = 0
    for name, svc in _compose()["services"].items():
        build = svc.get("build")
        if not build:
            continue
        built += 1
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context must be the repo root"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        assert ignore.is_file(), f"{name}: {ignore.name} missing (BuildKit per-Dockerfile ignore)"
    assert built >= 6


def test_dockerignore_excludes_data_and_secrets():
    required = {".git", ".venv", "data", "mlruns", "mlartifacts", "mlflow.db", "reports", "**/.env"}
    for df in DOCKERFILES:
        ignore = df.with_name(df.name + ".dockerignore")
        lines = {ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and ln[0] != "#"}
        assert required <= lines, f"{ignore.name} lacks {required - lines}"
        # the files the images COPY must not be excluded
        for needed in ["pyproject.toml", "README.md", "params.yaml", "har"]:
            assert needed not in lines


def test_every_compose_variable_is_in_env_example():
    env = _env_example()
    used = {m.group(1) for m in VAR_RE.finditer(_compose_text())}
    assert used, "compose should take its settings from the environment"
    missing = used - set(env)
    assert not missing, f"used in compose but not in infra/.env.example: {sorted(missing)}"


def test_required_variables_are_the_secrets():
    """Secrets are `${VAR:?...}` (no default baked in); .env.example marks them as placeholders."""
    env = _env_example()
    for m in VAR_RE.finditer(_compose_text()):
        var, op, default = m.groups()
        if SECRET_KEY_RE.search(var):
            assert op == ":?", f"secret ${{{var}}} must be required (:?), not defaulted"
            assert "dev-only" in env[var], f".env.example {var} must be a marked placeholder"
        elif op == ":-":
            assert default == env[var], f"{var}: compose default {default!r} != .env.example {env[var]!r}"


def test_no_literal_secrets_in_compose():
    for name, svc in _compose()["services"].items():
        for key, value in _env_of(svc).items():
            if SECRET_KEY_RE.search(key):
                assert VAR_RE.fullmatch(value), f"{name}.{key} must be a ${{VAR}}, got {value!r}"
            for cred in URL_CRED_RE.findall(value):
                assert VAR_RE.fullmatch(cred), f"{name}.{key}: literal password in a URL"
        for cred in URL_CRED_RE.findall(_command(svc)):
            assert VAR_RE.fullmatch(cred) or cred.startswith("$$"), f"{name}: literal password in command"


def test_depends_on_conditions_and_healthchecks():
    services = _compose()["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            cond = spec["condition"]
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has no healthcheck"
            else:
                assert cond == "service_completed_successfully", (name, dep, cond)
        long_running = svc.get("restart") == "unless-stopped"
        if long_running:
            assert "healthcheck" in svc, f"{name}: long-running service without healthcheck"
    assert services["api"]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_healthchecks_hit_the_port_the_service_listens_on():
    services = _compose()["services"]
    expect = {"mlflow": ("5000", "/health"), "prefect-server": ("4200", "/api/health"),
              "api": ("8000", "/healthz"), "prefect-worker": ("8080", "/health"),
              "pipeline-serve": ("8080", "/health")}
    for name, (port, path) in expect.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}{path}" in test, (name, test)
        cmd = _command(services[name])
        if name in {"mlflow", "prefect-server", "api"}:
            assert f"--port {port}" in cmd, (name, cmd)


def test_analytics_off_everywhere():
    keys = {"GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1",
            "MLFLOW_ENABLE_TELEMETRY": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for name in ["mlflow", "prefect-server", "prefect-worker", "pipeline-serve", "api"]:
        env = _env_of(_compose()["services"][name])
        for k, v in keys.items():
            assert env.get(k) == v, (name, k)
    for df in DOCKERFILES:
        text = df.read_text()
        for k, v in keys.items():
            assert f"{k}={v}" in text, (df.name, k)


def test_clients_point_at_the_servers():
    services = _compose()["services"]
    for name in ["prefect-worker", "pipeline-serve", "deploy", "api"]:
        assert _env_of(services[name])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    for name in ["prefect-worker", "pipeline-serve", "deploy"]:
        env = _env_of(services[name])
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env["AWS_ENDPOINT_URL_S3"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # the servers build their database URLs from stack.env's names, passwords from infra/.env
    mlflow_cmd = _command(services["mlflow"])
    assert "MLFLOW_BACKEND_STORE_URI=\"postgresql+psycopg2://" in mlflow_cmd
    assert "@postgres:5432/$${HAR_MLFLOW_DB}" in mlflow_cmd
    assert "--artifacts-destination \"s3://$${HAR_ARTIFACTS_BUCKET}\"" in mlflow_cmd
    # the API's Host header (mlflow:5000) must pass MLflow's DNS-rebinding check
    allowed = _env_example()["MLFLOW_ALLOWED_HOSTS"].split(",")
    assert "mlflow:5000" in allowed
    prefect_cmd = _command(services["prefect-server"])
    assert "PREFECT_API_DATABASE_CONNECTION_URL=\"postgresql+asyncpg://" in prefect_cmd
    assert "@postgres:5432/$${HAR_PREFECT_DB}" in prefect_cmd
    init = (INFRA / "postgres" / "init.sh").read_text()
    assert '"$HAR_MLFLOW_DB" "$HAR_PREFECT_DB"' in init and "CREATE DATABASE" in init
    assert "./postgres/init.sh:/docker-entrypoint-initdb.d/" in " ".join(services["postgres"]["volumes"])
    buckets = _command(services["minio-init"])
    for var in ("HAR_ARTIFACTS_BUCKET", "HAR_DVC_BUCKET", "HAR_LAKE_BUCKET"):
        assert f"$${{{var}}}" in buckets, var
    for name in ("postgres", "minio-init", "mlflow", "prefect-server", "prefect-worker"):
        assert services[name]["env_file"] == "stack.env", name


def test_compose_names_come_from_params():
    """infra/stack.env is what `har stack env --compose` writes from params.yaml: one source for the
    local stack and compose (regenerate it after editing params.yaml's stack section)."""
    from har.config import load_params
    from har.stack.services import read_env_file, settings_env

    expected = settings_env(load_params(ROOT / "params.yaml"))
    assert read_env_file(INFRA / "stack.env") == expected, \
        "infra/stack.env is stale: run `har stack env --compose infra/stack.env`"
    text = _compose_text()
    for key in expected:
        if key.startswith("HAR_"):
            assert f"$${{{key}}}" in text, f"compose never uses {key}"
    # nothing in compose spells a name that params owns
    for value in (expected["HAR_ARTIFACTS_BUCKET"], expected["HAR_DVC_BUCKET"], expected["HAR_WORK_POOL"]):
        assert value not in text, value


def test_api_and_drift_share_the_inference_log():
    services = _compose()["services"]
    api_log = [v for v in services["api"]["volumes"] if v.endswith("/app/data/inference_log")]
    flows_log = [v for v in services["pipeline-serve"]["volumes"] if v.endswith("/app/data/inference_log")]
    assert api_log and api_log[0].split(":")[0] == flows_log[0].split(":")[0]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["serve"]["inference_log_dir"] == "data/inference_log"


# --------------------------------------------------------------------------- Dockerfiles
def test_dockerfiles_install_pinned_cpu_torch_before_the_project():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    torch_pin = next(d for d in extras["ml"] if d.startswith("torch=="))
    assert DOCKERFILES, "no Dockerfiles under infra/docker"
    for df in DOCKERFILES:
        runs = _dockerfile_runs(df)
        torch_idx = next(i for i, r in enumerate(runs) if torch_pin in r)
        assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_idx], df.name
        project_idx = next(i for i, r in enumerate(runs) if re.search(r'"\.\[[a-z,]+\]"', r))
        assert torch_idx < project_idx, f"{df.name}: torch must be installed before the project"
        wanted = re.search(r'"\.\[([a-z,]+)\]"', runs[project_idx]).group(1).split(",")
        assert set(wanted) <= set(extras), f"{df.name}: unknown extra in {wanted}"
        # every extra pin matches pyproject (dev pins for psycopg2/boto3)
        all_pins = {d.split("==")[0].lower(): d for ds in extras.values() for d in ds}
        for pin in re.findall(r'"([A-Za-z0-9_.-]+==[^"]+)"', " ".join(runs)):
            assert all_pins.get(pin.split("==")[0].lower()) == pin, f"{df.name}: {pin} != pyproject"
        text = df.read_text()
        assert re.search(r"^FROM python:3\.11-slim", text, re.M), df.name
        assert re.search(r"^USER (?!root)\S+", text, re.M), f"{df.name}: must run as non-root"


def test_a_package_pinned_in_several_extras_has_one_pin():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins: dict[str, set[str]] = {}
    for deps in extras.values():
        for dep in deps:
            if "==" in dep:
                pins.setdefault(dep.split("==")[0].lower(), set()).add(dep)
    assert not {k: v for k, v in pins.items() if len(v) > 1}
    # the image extras build on the feature extras, so the images get the same pins
    for image in ("api", "train"):
        assert any(d.startswith("har[") for d in extras[image]), image


def test_api_dockerfile_contract():
    text = (INFRA / "docker" / "api.Dockerfile").read_text()
    assert '".[api]"' in text
    assert re.search(r"HEALTHCHECK .*urllib.*127\.0\.0\.1:8000/healthz", text.replace("\\\n", " "))
    assert 'CMD ["har", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "EXPOSE 8000" in text


def test_train_dockerfile_contract():
    text = (INFRA / "docker" / "train.Dockerfile").read_text()
    assert '".[train]"' in text
    assert '. infra/stack.env && dvc remote add --local --force -d s3 "s3://${HAR_DVC_BUCKET}/cache"' in text
    assert "endpointurl http://minio:9000" in text
    assert "core.no_scm true" in text  # .git is excluded from the build context


# --------------------------------------------------------------------------- commands exist
def test_third_party_commands_and_flags_exist(helps):
    services = _compose()["services"]
    mlflow_cmd = _command(services["mlflow"])
    assert "mlflow server" in mlflow_cmd
    import importlib.util

    pkg = Path(importlib.util.find_spec("mlflow").submodule_search_locations[0])
    src = (pkg / "cli" / "__init__.py").read_text() + (pkg / "utils" / "cli_args.py").read_text()
    for flag in _flags(mlflow_cmd, "mlflow server"):
        assert re.search(rf"[\"']{flag}[\"'/]", src), f"mlflow server has no option {flag}"
    # MLflow reads --backend-store-uri / --allowed-hosts from these env vars (compose relies on it)
    assert 'envvar="MLFLOW_BACKEND_STORE_URI"' in src
    assert 'envvar="MLFLOW_SERVER_ALLOWED_HOSTS"' in src

    used = {
        "prefect server start": _command(services["prefect-server"]),
        "prefect worker start": _command(services["prefect-worker"]),
        "prefect work-pool create": _command(services["prefect-worker"]),
    }
    for prog, cmdline in used.items():
        assert prog in cmdline, (prog, cmdline)
        rc, text = helps[prog]
        assert rc == 0, f"`{prog} --help` failed:\n{text[-2000:]}"
        for flag in _flags(cmdline, prog):
            assert flag in text, f"{prog} has no option {flag}"
    assert '--pool "$${HAR_WORK_POOL}"' in used["prefect worker start"]


@pytest.mark.parametrize("sub", ["har serve", "har pipeline serve", "har pipeline run"])
def test_har_commands_exist(helps, sub):
    rc, text = helps[sub]
    assert rc == 0, f"`{sub} --help` failed (a missing command is a broken install):\n{text[-2000:]}"
    all_cmds = " ".join(_command(s) for s in _compose()["services"].values())
    all_cmds += " ".join((INFRA / "docker" / n).read_text() for n in ["api.Dockerfile"])
    if sub == "har serve":
        for flag in ["--host", "--port"]:
            assert flag in text, f"har serve has no {flag}"
    assert sub.split()[-1] in all_cmds


# --------------------------------------------------------------------------- k8s
def test_k8s_manifests_parse_and_are_consistent():
    # Schemas and kustomize rendering: tests/infra/test_infra_validate.py. Here: how the objects fit.
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kust["resources"], "secrets are created out of band"
    docs = [d for d in _k8s_docs() if d.get("kind") != "Kustomization"]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    (dep,) = by_kind["Deployment"]
    spec = dep["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (c,) = pod["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"requests", "limits"} <= set(c["resources"])
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names["http"] == 8000
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] in port_names
    refs = {k: e[k]["name"] for e in c["envFrom"] for k in e}
    assert refs["secretRef"] == "har-secrets"
    config_maps = {d["metadata"]["name"]: d for d in by_kind["ConfigMap"]}
    assert refs["configMapRef"] in config_maps
    assert "MLFLOW_TRACKING_URI" in config_maps[refs["configMapRef"]]["data"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {i["name"] for i in kust["images"]} == {c["image"]}

    (svc,) = by_kind["Service"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] in port_names

    (hpa,) = by_kind["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= spec["replicas"] <= hpa["spec"]["maxReplicas"]

    (secret,) = by_kind["Secret"]  # the example only: placeholders
    assert all(v == "CHANGE-ME" for v in secret["stringData"].values())


def test_env_file_is_git_ignored_and_docs_exist():
    ignores = (INFRA / ".gitignore").read_text().split()
    assert ".env" in ignores
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    for word in ["MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLFLOW_S3_ENDPOINT_URL", "har-secrets",
                 "har stack env --compose", "har pipeline deploy", "har-pool", "har-retrain"]:
        assert word in deploy, word
