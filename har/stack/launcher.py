"""Start, check and stop the stack's processes: pid files, logs and health checks under ``stack.dir``.

``up`` is idempotent: a service whose pid file names a live process of the same program is left
alone (and waited for until healthy); a port held by anything else is an error naming the port.
``down`` stops only what ``up`` started (the pid files) and keeps every byte of state, so the next
``up`` finds runs, versions, aliases, buckets and flow runs where they were.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from har.config import Params
from har.logging import get_logger
from har.stack.services import (
    CLIENT_ENV_FILE,
    Layout,
    Service,
    StackError,
    build_services,
    client_env,
    console_script,
    layout,
    load_secrets,
    postgres_bin,
    write_env_file,
)

log = get_logger(__name__)
STOP_TIMEOUT_S = 20.0


@dataclass
class ServiceStatus:
    name: str
    url: str
    pid: int | None
    healthy: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# Processes


def _read_pid(lay: Layout, svc: Service) -> int | None:
    """The pid recorded for ``svc`` if that process still runs the same program, else None."""
    path = lay.pid(svc.name)
    if not path.is_file():
        return None
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return None
    except PermissionError:  # alive, owned by another user (postgres): trust the pid file
        return pid
    program = Path(svc.argv[0]).name.encode()
    if not any(Path(part.decode(errors="replace")).name.encode() == program for part in cmdline[:3]):
        path.unlink(missing_ok=True)  # the pid was reused by an unrelated process
        return None
    return pid


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "taken"
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _preexec_for(user: str | None) -> dict[str, object]:
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _start(lay: Layout, svc: Service) -> int:
    lay.logs.mkdir(parents=True, exist_ok=True)
    lay.run.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **svc.env}
    with open(lay.log(svc.name), "ab") as logf:
        logf.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} har stack up: {svc.name}\n".encode())
        logf.flush()
        # own session: the service outlives this command and `down` can signal its whole group
        proc = subprocess.Popen(svc.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=svc.cwd, start_new_session=True,
                                **_preexec_for(svc.run_as))  # type: ignore[arg-type]
    lay.pid(svc.name).write_text(f"{proc.pid}\n")
    return proc.pid


def _log_tail(lay: Layout, name: str, lines: int = 15) -> str:
    path = lay.log(name)
    if not path.is_file():
        return ""
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in tail)


def _stop_pid(pid: int, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------
# Health


def _http_ok(url: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return False, f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return False, str(getattr(err, "reason", err))


def _postgres_ok(p: Params, password: str) -> tuple[bool, str]:
    import psycopg2

    try:
        conn = psycopg2.connect(host=p.stack.host, port=p.stack.postgres_port, user=p.stack.postgres_user,
                                password=password, dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as err:
        return False, str(err).strip().splitlines()[0] if str(err).strip() else "not accepting connections"
    conn.close()
    return True, "accepting connections"


def _health(p: Params, svc: Service, secret: dict[str, str]) -> tuple[bool, str]:
    if svc.name == "postgres":
        return _postgres_ok(p, secret["POSTGRES_PASSWORD"])
    assert svc.health_url is not None
    return _http_ok(svc.health_url)


def _wait_healthy(p: Params, lay: Layout, svc: Service, pid: int, secret: dict[str, str]) -> str:
    deadline = time.monotonic() + p.stack.startup_timeout_s
    detail = "starting"
    while time.monotonic() < deadline:
        ok, detail = _health(p, svc, secret)
        if ok:
            return detail
        try:
            os.kill(pid, 0)
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    raise ProcessLookupError
        except ProcessLookupError:
            lay.pid(svc.name).unlink(missing_ok=True)
            raise StackError(f"{svc.name} exited during start-up; the end of {lay.log(svc.name)}:\n"
                             f"{_log_tail(lay, svc.name)}") from None
        time.sleep(0.5)
    raise StackError(f"{svc.name} not healthy after {p.stack.startup_timeout_s:.0f} s ({detail}); "
                     f"see {lay.log(svc.name)}:\n{_log_tail(lay, svc.name)}")


# ------------------------------------------------------------------------------------------------
# Bootstrap steps


def _init_postgres(p: Params, lay: Layout, svc: Service, password: str) -> None:
    """initdb once (as the `postgres` system user when we are root: initdb refuses root)."""
    data = lay.postgres_data
    if (data / "PG_VERSION").is_file():
        return
    data.mkdir(parents=True, exist_ok=True)
    owner = _preexec_for(svc.run_as)
    fd, pwfile = tempfile.mkstemp(prefix="har-pg-", dir=lay.root)
    try:
        os.write(fd, password.encode() + b"\n")
        os.close(fd)
        if owner:
            for path in (data, Path(pwfile)):
                os.chown(path, int(owner["user"]), int(owner["group"]))  # type: ignore[arg-type]
        res = subprocess.run([postgres_bin("initdb"), "-D", str(data), "-U", p.stack.postgres_user,
                              f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                              "--locale=C.UTF-8"],
                             capture_output=True, text=True, **owner)  # type: ignore[arg-type]
    finally:
        Path(pwfile).unlink(missing_ok=True)
    if res.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(f"initdb failed for {data} (as {svc.run_as or 'this user'}): "
                         f"{res.stderr.strip() or res.stdout.strip()}")
    log.info("initialised PostgreSQL data directory %s", data)


def _create_databases(p: Params, password: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=p.stack.host, port=p.stack.postgres_port, user=p.stack.postgres_user,
                            password=password, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for db in (p.stack.mlflow_db, p.stack.prefect_db):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{db}"')
                    log.info("created database %s", db)
    finally:
        conn.close()


def _ensure_work_pool(p: Params, env: dict[str, str]) -> None:
    """The `process` work pool that deployments target, with Prefect's default job template."""
    url = f"{env['PREFECT_API_URL']}/work_pools/{p.pipeline.work_pool}"
    try:
        with urllib.request.urlopen(url, timeout=10):
            return
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise StackError(f"Prefect API {url}: HTTP {err.code}") from None
    res = subprocess.run([console_script("prefect"), "work-pool", "create", p.pipeline.work_pool,
                          "--type", "process"], capture_output=True, text=True, env={**os.environ, **env},
                         timeout=120)
    if res.returncode != 0:
        raise StackError(f"creating work pool {p.pipeline.work_pool!r} failed: "
                         f"{(res.stderr or res.stdout).strip()[-500:]}")
    log.info("created work pool %s (process)", p.pipeline.work_pool)


def configure_dvc_remote(p: Params, project: Path, env: dict[str, str], *, default: bool) -> bool:
    """Point DVC's `stack` remote (in the git-ignored .dvc/config.local) at the stack's bucket, and
    make it the default while the stack runs; ``default=False`` gives the default back to the
    remote of .dvc/config. Returns False when ``project`` is not a DVC project."""
    if not (project / ".dvc").is_dir():
        return False
    from dvc.config import Config

    config = Config(dvc_dir=str(project / ".dvc"), validate=False)
    with config.edit("local") as conf:
        conf.setdefault("remote", {})["stack"] = {
            "url": f"s3://{p.stack.dvc_bucket}/cache", "endpointurl": env["AWS_ENDPOINT_URL_S3"],
            "access_key_id": env["AWS_ACCESS_KEY_ID"], "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region": env["AWS_DEFAULT_REGION"]}
        core = conf.setdefault("core", {})
        if default:
            core["remote"] = "stack"
        else:
            core.pop("remote", None)
    local = project / ".dvc" / "config.local"
    if local.exists():
        local.chmod(0o600)  # it holds the S3 key pair
    return True


# ------------------------------------------------------------------------------------------------
# up / status / down

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def up(p: Params, params_path: Path, *, only: list[str] | None = None,
       echo: Progress = _noop) -> list[ServiceStatus]:
    """Start every service that is not running yet, in order, each one healthy before the next."""
    lay = layout(p)
    for d in (lay.root, lay.logs, lay.run):
        d.mkdir(parents=True, exist_ok=True)
    lay.root.chmod(0o755)  # the postgres user must reach its data directory below it
    secret = load_secrets(lay)
    env = client_env(p, secret)
    services = build_services(p, secret, params_path)
    unknown = sorted(set(only or []) - {s.name for s in services})
    if unknown:
        raise StackError(f"unknown services {unknown}; the stack has {[s.name for s in services]}")
    started = time.monotonic()
    out = []
    for svc in services:
        if only and svc.name not in only:
            continue
        pid = _read_pid(lay, svc)
        if pid is None:
            if not _port_free(p.stack.host, svc.port):
                raise StackError(f"port {svc.port} on {p.stack.host} is already taken, so {svc.name} "
                                 f"cannot start; stop what holds it or change its port in params.yaml "
                                 f"(stack.*_port / serve.port)")
            if svc.name == "postgres":
                _init_postgres(p, lay, svc, secret["POSTGRES_PASSWORD"])
            pid = _start(lay, svc)
            verb = "started"
        else:
            verb = "already running"
        detail = _wait_healthy(p, lay, svc, pid, secret)
        if svc.name == "postgres":
            _create_databases(p, secret["POSTGRES_PASSWORD"])
        elif svc.name == "prefect":
            _ensure_work_pool(p, env)
        echo(f"{svc.name:<9} {verb:<16} {svc.url}  ({detail}, {time.monotonic() - started:.1f} s)")
        out.append(ServiceStatus(svc.name, svc.url, pid, True, detail))
    write_env_file(lay.root / CLIENT_ENV_FILE, env)
    if (not only or "s3" in only) and configure_dvc_remote(p, params_path.resolve().parent, env,
                                                          default=True):
        echo(f"dvc       remote 'stack' = s3://{p.stack.dvc_bucket}/cache (default while the stack runs)")
    (lay.run / "up.json").write_text(json.dumps({"seconds_to_healthy": time.monotonic() - started,
                                                 "services": [s.name for s in out]}))
    return out


def status(p: Params, params_path: Path) -> list[ServiceStatus]:
    lay = layout(p)
    secret = load_secrets(lay, create=False)
    out = []
    for svc in build_services(p, secret, params_path):
        pid = _read_pid(lay, svc)
        if pid is None:
            out.append(ServiceStatus(svc.name, svc.url, None, False, "not running"))
            continue
        ok, detail = _health(p, svc, secret)
        if svc.name == "api" and ok:
            ready, why = _http_ok(svc.url + "/readyz")
            detail = "ready" if ready else f"alive, no model yet ({why})"
        out.append(ServiceStatus(svc.name, svc.url, pid, ok, detail))
    return out


def down(p: Params, params_path: Path, *, only: list[str] | None = None,
         echo: Progress = _noop) -> list[str]:
    """Stop what `up` started (reverse order); keep all data. Returns the names stopped."""
    lay = layout(p)
    secret = load_secrets(lay, create=False)
    services = build_services(p, secret, params_path)
    unknown = sorted(set(only or []) - {s.name for s in services})
    if unknown:
        raise StackError(f"unknown services {unknown}; the stack has {[s.name for s in services]}")
    stopped = []
    for svc in reversed(services):
        if only and svc.name not in only:
            continue
        pid = _read_pid(lay, svc)
        if pid is None:
            continue
        _stop_pid(pid, svc.stop_signal)
        lay.pid(svc.name).unlink(missing_ok=True)
        stopped.append(svc.name)
        echo(f"{svc.name:<9} stopped (pid {pid})")
    if not only or "s3" in only:
        configure_dvc_remote(p, params_path.resolve().parent, client_env(p, secret), default=False)
    return stopped
