"""What the stack runs: params.yaml (``stack``, ``serve``, ``pipeline``) → service definitions.

A pure mapping from typed params (plus the generated secrets) to command lines, environments and
health checks. The launcher (``har.stack.launcher``) starts and stops what this describes; the
compose file reads the same names through ``settings_env`` (written to ``infra/stack.env``), so the
buckets, databases and work pool of the local stack and of compose have one source.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from har.config import Params
from har.errors import HarError

SECRETS_FILE = "secrets.env"
CLIENT_ENV_FILE = "client.env"
# Secrets: taken from the environment when set there, otherwise generated once into the stack dir.
SECRET_KEYS = ("POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HAR_ADMIN_TOKEN")
ANALYTICS_OFF = {"GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1",
                 "MLFLOW_ENABLE_TELEMETRY": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class StackError(HarError):
    """The stack cannot be started, stopped or reached (port taken, service unhealthy, …)."""


@dataclass(frozen=True)
class Service:
    """One process of the stack and how to tell that it is healthy."""

    name: str
    argv: list[str]
    port: int
    health_url: str | None  # an HTTP GET that answers 2xx once the service works
    url: str  # what `har stack status` shows a person
    env: dict[str, str] = field(default_factory=dict)
    run_as: str | None = None  # a system user (PostgreSQL refuses to run as root)
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM


@dataclass(frozen=True)
class Layout:
    """Where the stack keeps its state, pids and logs (all under ``stack.dir``)."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def postgres_data(self) -> Path:
        return self.root / "postgres"

    @property
    def s3_state(self) -> Path:
        return self.root / "s3"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.run / f"{name}.pid"


def layout(p: Params) -> Layout:
    return Layout(p.stack.dir.resolve())


def settings_env(p: Params) -> dict[str, str]:
    """The non-secret names the local stack and compose share (``infra/stack.env``)."""
    s = p.stack
    return {
        "POSTGRES_USER": s.postgres_user,
        "HAR_MLFLOW_DB": s.mlflow_db,
        "HAR_PREFECT_DB": s.prefect_db,
        "HAR_ARTIFACTS_BUCKET": s.artifacts_bucket,
        "HAR_DVC_BUCKET": s.dvc_bucket,
        "HAR_LAKE_BUCKET": s.lake_bucket,
        "HAR_WORK_POOL": p.pipeline.work_pool,
        "AWS_DEFAULT_REGION": s.s3_region,
    }


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return out


def write_env_file(path: Path, values: dict[str, str], mode: int = 0o600) -> Path:
    """``KEY=value`` lines, written atomically with ``mode`` (secrets stay private to the owner)."""
    from har.io import atomic_path

    with atomic_path(path, ".env") as tmp:
        tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        tmp.chmod(mode)
    return path


def load_secrets(lay: Layout, create: bool = True) -> dict[str, str]:
    """Secrets from the environment, else from ``secrets.env``, else generated (once) and saved."""
    path = lay.root / SECRETS_FILE
    stored = read_env_file(path)
    generated = {"POSTGRES_PASSWORD": secrets.token_urlsafe(18),
                 "AWS_ACCESS_KEY_ID": "HAR" + secrets.token_hex(8).upper(),
                 "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
                 "HAR_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    values = {k: os.environ.get(k) or stored.get(k) or generated[k] for k in SECRET_KEYS}
    if create and values != stored:
        lay.root.mkdir(parents=True, exist_ok=True)
        write_env_file(path, values)
    return values


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda q: int(q.parts[-3]) if q.parts[-3].isdigit() else 0)
    if found:
        return str(found[-1])
    if which := shutil.which(name):
        return which
    raise StackError(f"PostgreSQL's {name} is not installed: run `apt-get install postgresql` "
                     "(or `make stack`, which installs it)")


def console_script(name: str) -> str:
    """A console script of this environment (mlflow, prefect, har), beside the running Python."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def postgres_url(p: Params, password: str, db: str, driver: str = "psycopg2") -> str:
    s = p.stack
    return f"postgresql+{driver}://{s.postgres_user}:{password}@{s.host}:{s.postgres_port}/{db}"


def client_env(p: Params, secret: dict[str, str]) -> dict[str, str]:
    """What a shell (or test) needs to use the stack: `eval "$(har stack env)"`."""
    s = p.stack
    return {
        "MLFLOW_TRACKING_URI": f"http://{s.host}:{s.mlflow_port}",
        "PREFECT_API_URL": f"http://{s.host}:{s.prefect_port}/api",
        "AWS_ENDPOINT_URL_S3": f"http://{s.host}:{s.s3_port}",
        "AWS_ACCESS_KEY_ID": secret["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": secret["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": s.s3_region,
        # the lake is the stack's dataset mirror: `har data push` fills it, `har data fetch` reads it
        "HAR_DATA_MIRROR": f"s3://{s.lake_bucket}/raw",
        # the API's admin routes (POST /v1/admin/reload) take `Authorization: Bearer $HAR_ADMIN_TOKEN`
        "HAR_ADMIN_TOKEN": secret["HAR_ADMIN_TOKEN"],
    }


def build_services(p: Params, secret: dict[str, str], params_path: Path) -> list[Service]:
    """The stack in start order: PostgreSQL, S3, MLflow, Prefect server, worker, API."""
    s, lay = p.stack, layout(p)
    host = s.host
    client = client_env(p, secret)
    s3_env = {k: client[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    prefect_env = {"PREFECT_HOME": str(lay.prefect_home), "PREFECT_API_URL": client["PREFECT_API_URL"]}
    as_root = os.geteuid() == 0
    postgres = Service(
        name="postgres",
        argv=[postgres_bin("postgres"), "-D", str(lay.postgres_data), "-p", str(s.postgres_port),
              "-c", f"listen_addresses={host}", "-c", "unix_socket_directories=",
              "-c", "max_connections=200"],
        port=s.postgres_port, health_url=None,
        url=f"postgresql://{s.postgres_user}@{host}:{s.postgres_port}/{{{s.mlflow_db},{s.prefect_db}}}",
        run_as="postgres" if as_root else None,
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every pooled client to leave
        stop_signal=signal.SIGINT)
    s3 = Service(
        name="s3",
        argv=[sys.executable, "-m", "har.stack.s3server", "--host", host, "--port", str(s.s3_port),
              "--state-dir", str(lay.s3_state),
              "--buckets", ",".join([s.artifacts_bucket, s.dvc_bucket, s.lake_bucket])],
        port=s.s3_port, health_url=f"http://{host}:{s.s3_port}/_health",
        url=client["AWS_ENDPOINT_URL_S3"], env=s3_env)
    mlflow = Service(
        name="mlflow",
        argv=[console_script("mlflow"), "server", "--host", host, "--port", str(s.mlflow_port),
              "--workers", str(s.mlflow_workers), "--serve-artifacts",
              "--artifacts-destination", f"s3://{s.artifacts_bucket}"],
        port=s.mlflow_port, health_url=f"http://{host}:{s.mlflow_port}/health",
        url=client["MLFLOW_TRACKING_URI"],
        # the backend URI travels in MLflow's own variable, so the password is not in `ps` output
        env={**s3_env, "AWS_ENDPOINT_URL_S3": client["AWS_ENDPOINT_URL_S3"],
             "MLFLOW_S3_ENDPOINT_URL": client["AWS_ENDPOINT_URL_S3"],
             "MLFLOW_BACKEND_STORE_URI": postgres_url(p, secret["POSTGRES_PASSWORD"], s.mlflow_db)})
    prefect = Service(
        name="prefect",
        argv=[console_script("prefect"), "server", "start", "--host", host, "--port", str(s.prefect_port)],
        port=s.prefect_port, health_url=f"http://{host}:{s.prefect_port}/api/health",
        url=f"http://{host}:{s.prefect_port}",
        env={**prefect_env, "PREFECT_UI_API_URL": client["PREFECT_API_URL"],
             "PREFECT_API_DATABASE_CONNECTION_URL": postgres_url(
                 p, secret["POSTGRES_PASSWORD"], s.prefect_db, driver="asyncpg")})
    worker = Service(
        name="worker",
        argv=[console_script("prefect"), "worker", "start", "--pool", p.pipeline.work_pool,
              "--type", "process", "--name", f"{p.pipeline.work_pool}-worker", "--with-healthcheck"],
        port=s.worker_health_port, health_url=f"http://{host}:{s.worker_health_port}/health",
        url=f"http://{host}:{s.prefect_port}/work-pools/work-pool/{p.pipeline.work_pool}",
        # flow runs inherit this environment: they log to the MLflow server and read the S3 lake
        env={**prefect_env, **client, "PREFECT_WORKER_WEBSERVER_HOST": host,
             "PREFECT_WORKER_WEBSERVER_PORT": str(s.worker_health_port),
             # poll every 2 s (Prefect's default is 10): a run started from the UI or by the drift
             # trigger begins without a noticeable wait on one machine
             "PREFECT_WORKER_QUERY_SECONDS": "2"},
        cwd=params_path.resolve().parent)
    api = Service(
        name="api",
        argv=[console_script("har"), "serve", "--params", str(params_path.resolve()), "--host", host,
              "--port", str(p.serve.port)],
        port=p.serve.port, health_url=f"http://{host}:{p.serve.port}/healthz",
        url=f"http://{host}:{p.serve.port}",
        env={k: client[k] for k in ("MLFLOW_TRACKING_URI", "HAR_ADMIN_TOKEN")},
        cwd=params_path.resolve().parent)
    return [postgres, s3, mlflow, prefect, worker, api]
