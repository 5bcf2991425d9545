"""Each image's install set, installed into a fresh venv exactly as its Dockerfile says, runs the
image's commands.

No Docker engine here, so the Dockerfile is replayed: its `COPY` lines (honouring the image's
.dockerignore) fill a folder standing in for WORKDIR, and every `pip` / `dvc` command of its `RUN`
lines runs there, in order, in a fresh venv. Deliberate differences: `--index-url` (the PyTorch CPU
index) is dropped because the same CPU torch wheel is on disk here; pip's cache is shared (the images
disable it) and pip does not byte-compile (Python does that on first import). The other RUN commands
(`useradd`, `chown`, `mkdir`, ...) only set up the container's user and folders. A failing install
fails the test.

Slow (one venv per image, 1-2 GB each): marked `integration`; each venv is built once per module.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
# pytest-timeout counts fixture setup: a cold pip cache can take the train venv past the default 600 s
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

# The environment the images set (ENV lines) minus PIP_NO_CACHE_DIR: pip's cache is what makes this fast.
ANALYTICS_OFF = {"GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1",
                 "MLFLOW_ENABLE_TELEMETRY": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


# --------------------------------------------------------------------------- replaying a Dockerfile
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip():
            instr, _, args = line.strip().partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def replayed_steps(path: Path) -> list[tuple[str, list[str]]]:
    """("COPY", [src..., dest]) and ("RUN", argv) for every pip/dvc command of the RUN lines."""
    steps: list[tuple[str, list[str]]] = []
    for instr, args in dockerfile_instructions(path):
        if instr == "COPY":
            words = shlex.split(args)
            assert not any(w.startswith("--") for w in words), f"{path.name}: COPY flags not replayed"
            steps.append(("COPY", words))
        elif instr == "RUN":
            assert not args.startswith("["), f"{path.name}: exec-form RUN not replayed"
            for part in args.split("&&"):
                argv = shlex.split(part)
                if argv and argv[0] in {"pip", "dvc"}:
                    steps.append(("RUN", argv))
                elif argv[:1] == ["."]:  # `. infra/stack.env`: later commands expand its variables
                    steps.append(("SOURCE", argv[1:]))
    return steps


def pip_install_sets(path: Path) -> list[list[str]]:
    """The requirement arguments of each `pip install` in the Dockerfile, in order."""
    sets = []
    for kind, argv in replayed_steps(path):
        if kind == "RUN" and argv[:2] == ["pip", "install"]:
            sets.append([a for a in _pip_args(argv[2:]) if not a.startswith("-")])
    return sets


def _pip_args(args: list[str]) -> list[str]:
    # --index-url: the image takes torch from the PyTorch CPU index; here the same CPU wheel is on disk
    # and that index is out of reach.
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--index-url":
            skip = True
        elif not a.startswith("--index-url="):
            out.append(a)
    return out


def _ignored(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or (p.startswith("**/") and fnmatch.fnmatch(rel, p[3:]))
               for p in patterns)


def _copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def _copy_tree(src: Path, dest: Path, patterns: list[str]) -> None:
    """The files under src (in the build context) into dest, minus what the .dockerignore excludes."""
    for dirpath, dirnames, filenames in os.walk(src):
        base = Path(dirpath)
        rel_dir = base.relative_to(ROOT).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        dirnames[:] = [d for d in dirnames if not _ignored(prefix + d, patterns)]
        for f in filenames:
            if not _ignored(prefix + f, patterns):
                _copy_file(base / f, dest / (base / f).relative_to(src))


@dataclass
class Image:
    name: str
    venv: Path
    app: Path  # stands in for the image's WORKDIR
    log: str

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """A container-like environment for the image's commands: only what the Dockerfile sets,
        nothing of the test's own venv (PYTHONPATH would import the worktree's har) and a HOME of
        its own (prefect, dvc and mlflow write there)."""
        return {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.app.parent / "home"),
                "LANG": "C.UTF-8", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb",
                **ANALYTICS_OFF, **extra}

    def pip_env(self) -> dict[str, str]:
        """pip keeps the host's settings (index, proxy, certificates, the user's cache) so the
        install works wherever the tests run, but never the test venv's Python path."""
        drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_NO_CACHE_DIR", "PIP_USER", "PIP_TARGET",
                "PIP_PREFIX"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        return {**env, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", **ANALYTICS_OFF}

    def run(self, *cmd: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=self.app, env=self.env(**env), capture_output=True,
                              text=True, timeout=timeout)

    def ok(self, *cmd: str, timeout: float = 300) -> str:
        res = self.run(*cmd, timeout=timeout)
        assert res.returncode == 0, f"`{' '.join(cmd)}` in the {self.name} venv:\n{res.stdout}\n{res.stderr}"
        return res.stdout + res.stderr


def build(dockerfile: Path, where: Path) -> Image:
    name = dockerfile.name.removesuffix(".Dockerfile")
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
    patterns = [p.strip().rstrip("/") for p in ignore if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "negated .dockerignore patterns not replayed"
    app, venv = where / "app", where / "venv"
    app.mkdir()
    (where / "home").mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    image = Image(name, venv, app, "")
    log = []
    sourced: dict[str, str] = {}
    for kind, argv in replayed_steps(dockerfile):
        if kind == "SOURCE":
            from har.stack.services import read_env_file

            sourced.update(read_env_file(app / argv[0]))
            continue
        argv = [re.sub(r"\$\{(\w+)\}", lambda m: sourced[m[1]], a) for a in argv]
        if kind == "COPY":
            *srcs, dest = argv
            for src in srcs:
                path = ROOT / src
                if path.is_dir():  # a folder's contents go into dest
                    _copy_tree(path, app / dest, patterns)
                elif dest.endswith("/") or dest == "." or len(srcs) > 1:
                    _copy_file(path, app / dest / path.name)
                else:
                    _copy_file(path, app / dest)
            continue
        if argv[0] == "pip":
            cmd = [str(venv / "bin" / "python"), "-m", "pip", *_pip_args(argv[1:])]
            if argv[1] == "install":
                # byte-compiling ~1 GB of site-packages is most of an install's CPU time
                cmd.append("--no-compile")
            env = image.pip_env()
        else:
            cmd, env = [str(venv / "bin" / argv[0]), *argv[1:]], image.env()
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=app, env=env, capture_output=True, text=True, timeout=1800)
        log.append(f"$ {shlex.join(argv)}  ({time.monotonic() - t0:.0f} s, rc {res.returncode})")
        # An install that fails is a broken image: fail, never skip.
        assert res.returncode == 0, f"{dockerfile.name}: `{shlex.join(argv)}` failed:\n" \
                                    f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    image.log = "\n".join(log)
    return image


@pytest.fixture(scope="module")
def _builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Image]]]:
    # Both venvs are built at once: the API tests run while the train venv is still installing.
    dirs = {name: tmp_path_factory.mktemp(name) for name in ("api", "train")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(build, DOCKER / f"{name}.Dockerfile", d) for name, d in dirs.items()}
    # ~1-2 GB each; pytest would keep the last three runs' copies
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def api_image(_builds: dict[str, Future[Image]]) -> Image:
    return _builds["api"].result()


@pytest.fixture(scope="module")
def train_image(_builds: dict[str, Future[Image]]) -> Image:
    return _builds["train"].result()


def test_a_failing_install_fails_the_build(tmp_path: Path) -> None:
    dockerfile = tmp_path / "broken.Dockerfile"
    dockerfile.write_text('FROM python:3.11-slim\nRUN pip install --no-index "har-no-such-package==0.0.0"\n')
    (tmp_path / "broken.Dockerfile.dockerignore").write_text(".git\n")
    (tmp_path / "build").mkdir()
    with pytest.raises(AssertionError, match="har-no-such-package"):
        build(dockerfile, tmp_path / "build")


def test_each_dockerfile_installs_one_named_extra_after_torch() -> None:
    """The install set lives in pyproject.toml only: `.[<image>]` after the pinned torch."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    torch_pin = next(d for d in extras["ml"] if d.startswith("torch=="))
    for name in ("api", "train"):
        sets = pip_install_sets(DOCKER / f"{name}.Dockerfile")
        assert sets[0] == [torch_pin], sets
        assert sets[1] == [f".[{name}]"], f"{name}.Dockerfile must install exactly `.[{name}]`: {sets}"
        assert all(s == ["."] for s in sets[2:]), sets  # then only the project itself, --no-deps
        assert name in extras


# --------------------------------------------------------------------------- API image
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# An untrained cnn1d through the project's own exporter, inside the API venv: the production ONNX
# contract (har.* metadata, normalisation inside) on a model that needs no data.
MAKE_ONNX = textwrap.dedent("""
    import sys
    from pathlib import Path

    import torch
    from har.config import TrainParams
    from har.export.onnx import export_onnx
    from har.models import build_model
    from har.training.bundle import ModelMeta, TrainedModel

    classes = ["WALKING", "SITTING", "LAYING"]
    channels = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    tp = TrainParams(model="cnn1d", cnn1d={"channels": [8], "kernel_size": 5, "dropout": 0.0})
    torch.manual_seed(0)
    net = build_model("cnn1d", tp, len(channels), len(classes)).eval()
    meta = ModelMeta(model="cnn1d", classes=classes, channels=channels, rate_hz=50.0, window_len=128,
                     window_s=2.56, overlap=0.5, train_params=tp.model_dump(mode="json"))
    print(export_onnx(TrainedModel(meta, net=net), Path(sys.argv[1])))
""")


def test_api_image_imports_and_cli(api_image: Image, tmp_path: Path) -> None:
    print(api_image.log)
    api_image.ok("python", "-c", "import har.serving.app, har.serving.model, har.serving.predict")
    text = api_image.ok("har", "serve", "--help")
    assert "--host" in text and "--port" in text
    out = tmp_path / "openapi.json"
    api_image.ok("har", "serve", "--openapi", str(out))
    assert "/v1/predict" in json.loads(out.read_text())["paths"]
    api_image.ok("python", "-m", "pip", "check")


@pytest.fixture
def served(api_image: Image, tmp_path: Path) -> Iterator[str]:
    """`har serve` (the image's CMD, on 127.0.0.1:<free port>) on a tiny ONNX model file."""
    model = tmp_path / "tiny.onnx"
    api_image.ok("python", "-c", MAKE_ONNX, str(model), timeout=300)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(["har", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--model-uri", str(model), "--inference-log-dir", str(tmp_path / "log")],
                            cwd=api_image.app, env=api_image.env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if _get(f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_api_image_serves_a_model(served: str) -> None:
    status, body = _get(f"{served}/healthz")
    assert status == 200, body
    status, body = _get(f"{served}/v1/model")
    assert status == 200 and json.loads(body)["source_uri"].endswith("tiny.onnx"), body
    window = [[0.9, 0.0, 0.1, 0.0, 0.0, 0.0]] * 128
    req = urllib.request.Request(
        f"{served}/v1/predict", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
                         "windows": [window, window], "return_probs": True}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    assert len(out["predictions"]) == 2
    assert {p["activity"] for p in out["predictions"]} <= {"WALKING", "SITTING", "LAYING"}


# --------------------------------------------------------------------------- train image
def test_train_image_commands(train_image: Image) -> None:
    print(train_image.log)
    assert "Commands" in train_image.ok("har", "--help")  # the image's CMD
    for sub in (["pipeline", "serve"], ["pipeline", "run"]):
        train_image.ok("har", *sub, "--help")
    text = train_image.ok("mlflow", "server", "--help")
    for flag in ("--backend-store-uri", "--artifacts-destination", "--serve-artifacts", "--allowed-hosts"):
        assert flag in text, flag
    train_image.ok("prefect", "--help")
    text = train_image.ok("prefect", "server", "start", "--help")
    assert "--port" in text
    train_image.ok("prefect", "worker", "start", "--help")


def test_train_image_dvc_has_the_s3_remote(train_image: Image) -> None:
    version = train_image.ok("dvc", "version")
    # "Supports:" heads an indented list of remote types, one per line
    supports = version.split("Supports:", 1)[1].split("Config:", 1)[0]
    assert any(ln.strip().startswith("s3 (") for ln in supports.splitlines()), version
    # the RUN line's `dvc config` / `dvc remote add --local -d s3 ...` took effect in the replayed WORKDIR
    from har.config import load_params

    bucket = load_params(ROOT / "params.yaml").stack.dvc_bucket  # through infra/stack.env
    assert f"s3://{bucket}/cache" in train_image.ok("dvc", "remote", "list")
    local = train_image.ok("dvc", "config", "--local", "--list")
    assert "core.no_scm=true" in local and "core.remote=s3" in local, local


def test_train_image_server_drivers(train_image: Image) -> None:
    """What the servers load at start: psycopg2 + boto3 (MLflow on PostgreSQL/S3), asyncpg (Prefect)."""
    train_image.ok("python", "-c", textwrap.dedent("""
        import asyncpg, boto3, psycopg2, dvc_s3
        import sqlalchemy as sa
        from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository
        # dialect + driver resolve without a server (create_engine does not connect)
        for url in ("postgresql+psycopg2://u:p@h/db", "postgresql+asyncpg://u:p@h/db"):
            sa.create_engine(url).dialect.import_dbapi()
    """))
    train_image.ok("python", "-m", "pip", "check")
