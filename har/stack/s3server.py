"""A local S3 server for the stack: moto in server mode, credentials enforced, state kept on disk.

Run (the launcher starts it as a service)::

    AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\
        python -m har.stack.s3server --host 127.0.0.1 --port 9000 --state-dir DIR [--buckets a,b]

Health: poll ``GET http://HOST:PORT/_health``; it answers 200 ``{"status": "ok", ...}``. The
socket is opened only after the state is restored and ``--buckets`` exist, so "connection refused"
means "not ready yet". (``_health`` cannot collide with S3: bucket names never start with ``_``.)

Credentials. Only the key pair in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` is accepted;
any other key gets moto's own 403 ``InvalidAccessKeyId``, a wrong secret ``SignatureDoesNotMatch``.
Moto authenticates once ``INITIAL_NO_AUTH_ACTION_COUNT`` is 0 and looks keys up in its IAM
backend, so the pair is registered there at start for an IAM user whose only policy allows
``s3:*``. Requests moto would not authenticate are refused in front of it with 403
``AccessDenied``: unsigned or presigned requests (moto answers them with a 500) and the
``/moto-api/`` management endpoints (unauthenticated reset, auth switch-off, full data dump).
Use a region of the ``aws`` partition (us-east-1 by default).

State. Moto keeps everything in memory; this process restores buckets and objects (content, user
metadata, content type, ETag, last-modified) from ``--state-dir`` before it listens, and saves them
back every ``--save-interval`` seconds (only objects that changed) and on SIGTERM/SIGINT, so a
crash (kill -9) loses at most what changed since the last periodic save. Layout::

    DIR/index.json          buckets → objects → {blob, size, etag, last_modified, metadata}
    DIR/blobs/ab/abcd…      object content, named by its sha256 (written once, never rewritten)
    DIR/.lock               flock: one server per state dir

Blobs are written to a temp file and renamed, then the index is replaced atomically, then blobs no
longer referenced are removed: at every instant the index on disk names complete blobs, whatever
moment the process dies. Restore checks each blob's size and sha256.

Why moto's backend and not the S3 API against itself: restoring through the backend happens
before the socket opens (no client ever sees a half-restored store) and needs neither credentials
nor HTTP; saving reads each changed object once, in-process, and keeps the original ETag (an
S3 copy would recompute it for multipart objects). The cost is coupling to moto internals
(``s3_backends``, ``FakeKey``, the IAM backend); moto is pinned (5.2.5) and
tests/stack/test_s3server.py fails if an upgrade breaks any of it.

Not kept: object versions other than the latest, ACLs, tags, bucket policies/configuration,
multipart uploads still in progress.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HEALTH_PATH = "/_health"
INDEX = "index.json"
BLOBS = "blobs"
FORMAT = 1
PARTITION = "aws"
IAM_USER = "har-stack"
DEFAULT_REGION = "us-east-1"
_CHUNK = 1 << 20
ETAG_WAIT_ROUNDS = 3  # saves to skip a key whose ETag moto has not computed yet (see _write_blob)

log = logging.getLogger("har.stack.s3server")

# One version per key is kept; an object's fingerprint says whether it changed since the last save.
Fingerprint = tuple[int, str, tuple[tuple[str, str], ...]]


class StateError(Exception):
    """The state dir or the configuration cannot be used; the message is one line."""


def _moto() -> Any:
    """Import moto with authentication switched on (it reads the setting at import and per call)."""
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    return settings


def account_id() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    # moto serves the account named by MOTO_ACCOUNT_ID when it is set; keep state for that one
    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def s3_backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id()][PARTITION]


def register_credentials(access_key_id: str, secret_access_key: str) -> None:
    """Make the given key pair the one IAM identity moto accepts, allowed every S3 action."""
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id()][PARTITION]
    iam.create_user(DEFAULT_REGION, IAM_USER)
    iam.put_user_policy(IAM_USER, "s3-all", json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }))
    key = iam.create_access_key(IAM_USER)
    # moto generates a random pair; swap in the one this process was given
    iam.access_keys.pop(key.physical_resource_id)
    key.access_key_id = access_key_id
    key.secret_access_key = secret_access_key
    iam.access_keys[key.physical_resource_id] = key


def _fingerprint(fk: Any) -> Fingerprint:
    # size + last-modified (microseconds) + metadata; not the ETag, which moto computes lazily
    meta = tuple(sorted((str(k), str(v)) for k, v in dict(fk.metadata).items()))
    return (int(fk.size), fk.last_modified.isoformat(), meta)


def _latest_keys(bucket: Any) -> Iterable[tuple[str, Any]]:
    """(name, FakeKey) of the latest version of each key, safe against concurrent requests."""
    from moto.s3.models import FakeKey

    # dict.items on the raw store: a point-in-time copy of name → [versions] (moto's own items()
    # looks each name up again and races with deletes)
    for name, versions in list(dict.items(bucket.keys)):
        if versions and isinstance(versions[-1], FakeKey):  # skip delete markers
            yield name, versions[-1]


def _fsync_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class StateStore:
    """Buckets and objects of the moto S3 backend, mirrored to a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / BLOBS
        self.index: dict[str, Any] = {"format": FORMAT, "buckets": {}}
        self.fingerprints: dict[tuple[str, str], Fingerprint] = {}
        self.last_save: float | None = None
        self.saves = 0
        self._etag_waits: dict[int, int] = {}  # id(FakeKey) → rounds seen without an ETag

    def _blob_path(self, sha: str) -> Path:
        return self.blobs / sha[:2] / sha

    def load_index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.exists():
            return {"format": FORMAT, "buckets": {}}
        try:
            index = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise StateError(f"{path}: unreadable state index ({err})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise StateError(f"{path}: not a format-{FORMAT} s3server state index")
        return index

    def restore(self) -> int:
        """Recreate the saved buckets and objects in moto; returns the number of objects."""
        backend = s3_backend()
        index = self.load_index()
        n = 0
        for name, b in index["buckets"].items():
            backend.create_bucket(name, b["region"])
            for key, e in b["objects"].items():
                blob = self._blob_path(e["blob"])
                try:
                    data = blob.read_bytes()
                except OSError:
                    raise StateError(f"{blob}: missing blob of s3://{name}/{key}") from None
                if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["blob"]:
                    raise StateError(f"{blob}: blob of s3://{name}/{key} is damaged "
                                     f"(size or sha256 differs from {INDEX})")
                fk = backend.put_object(name, key, data, etag=e["etag"], disable_notification=True)
                fk.set_metadata(dict(e["metadata"]))
                fk.last_modified = dt.datetime.fromisoformat(e["last_modified"])
                self.fingerprints[(name, key)] = _fingerprint(fk)
                n += 1
        self.index = index
        return n

    def _write_blob(self, fk: Any) -> tuple[str, str]:
        """Copy a key's content into blobs/ (sha256-named); returns (sha256, ETag).

        ValueError when the key cannot be read consistently right now (the caller retries it
        next round): moto reads the buffer under ``fk.lock`` everywhere except the first ETag
        computation, which the PUT response does right after the key becomes visible; a key
        whose ETag is not cached yet is therefore left for the next round, and what was read is
        checked against the size and, for single-part objects, the ETag (the md5).
        """
        etag = fk._etag
        if etag is None:
            seen = self._etag_waits[id(fk)] = self._etag_waits.get(id(fk), 0) + 1
            if seen <= ETAG_WAIT_ROUNDS:
                raise ValueError("ETag not computed yet: the PUT is still in flight")
            with fk.lock:  # long after any PUT response: nobody else computes it now
                etag = fk.etag.strip('"')
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        size = 0
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".blob-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as f:
                # moto's own `value` property copies the whole object into memory; stream
                # instead, under the key's lock so no request moves the buffer meanwhile
                with fk.lock:
                    buf = fk._value_buffer
                    buf.seek(0)
                    while chunk := buf.read(_CHUNK):
                        sha.update(chunk)
                        md5.update(chunk)
                        size += len(chunk)
                        f.write(chunk)
                if size != fk.size or ("-" not in etag and md5.hexdigest() != etag):
                    raise ValueError("content changed while it was read")
                f.flush()
                os.fsync(f.fileno())
            digest = sha.hexdigest()
            dest = self._blob_path(digest)
            if not dest.exists():
                dest.parent.mkdir(exist_ok=True)
                os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return digest, etag

    def save(self) -> int:
        """Write objects changed since the last save and the index; returns how many changed."""
        backend = s3_backend()
        prev = self.index["buckets"]
        buckets: dict[str, Any] = {}
        fingerprints: dict[tuple[str, str], Fingerprint] = {}
        changed = 0
        for name, bucket in list(backend.buckets.items()):
            old_objects = prev.get(name, {}).get("objects", {})
            objects: dict[str, Any] = {}
            for key, fk in _latest_keys(bucket):
                try:
                    fp = _fingerprint(fk)
                    if self.fingerprints.get((name, key)) == fp and key in old_objects:
                        objects[key] = old_objects[key]
                        fingerprints[(name, key)] = fp
                        continue
                    digest, etag = self._write_blob(fk)
                    objects[key] = {
                        "blob": digest, "size": int(fk.size),
                        "etag": etag,  # as moto keeps it: unquoted, "<md5>-<parts>" if multipart
                        "last_modified": fk.last_modified.isoformat(),
                        "metadata": dict(fp[2]),
                    }
                except (ValueError, RuntimeError):
                    # replaced or being written by a request right now (closed buffer, metadata
                    # changing size): keep what was saved before, the next round takes the new one
                    if key in old_objects and (name, key) in self.fingerprints:
                        objects[key] = old_objects[key]
                        fingerprints[(name, key)] = self.fingerprints[(name, key)]
                    continue
                fingerprints[(name, key)] = fp
                changed += 1
            buckets[name] = {"region": bucket.region_name, "objects": objects}
        if buckets != prev:
            index = {"format": FORMAT, "buckets": buckets}
            self.root.mkdir(parents=True, exist_ok=True)
            _fsync_write(self.root / INDEX, json.dumps(index, indent=1, sort_keys=True).encode())
            self.index = index
            self._collect_garbage()
        self.fingerprints = fingerprints
        if self._etag_waits:  # forget keys that are gone
            live = {id(fk) for b in list(backend.buckets.values()) for _, fk in _latest_keys(b)}
            self._etag_waits = {k: v for k, v in self._etag_waits.items() if k in live}
        self.last_save = time.time()
        self.saves += 1
        return changed

    def _collect_garbage(self) -> None:
        """Remove blobs the index no longer names (after the index was replaced: never before)."""
        live = {e["blob"] for b in self.index["buckets"].values() for e in b["objects"].values()}
        if not self.blobs.is_dir():
            return
        for path in self.blobs.glob("*/*"):
            if path.name not in live:
                path.unlink(missing_ok=True)
        for path in self.blobs.glob(".blob-*"):  # temp files of a process that died mid-write
            path.unlink(missing_ok=True)


def _xml_error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>").encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                      ("Content-Length", str(len(body)))])
    return [body]


def guarded(app: Callable[..., Any], health: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    """The WSGI app in front of moto: health check, and refusal of what moto would not authenticate."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            body = json.dumps(health()).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/moto-api"):
            return _xml_error(start_response, "AccessDenied",
                              "the moto management API is disabled on this server")
        if not environ.get("HTTP_AUTHORIZATION", "").startswith("AWS4-HMAC-SHA256 "):
            return _xml_error(start_response, "AccessDenied",
                              "requests must be signed with AWS Signature Version 4 in the "
                              "Authorization header; anonymous and presigned requests are refused")
        return app(environ, start_response)

    return wsgi


def _credentials() -> tuple[str, str]:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not key or not secret:
        raise StateError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the only key pair this "
                         "server will accept")
    # moto splits the SigV4 credential scope on '/' and the header on ',' and whitespace
    if any(c in key for c in "/, \t") or len(key) < 3:
        raise StateError(f"AWS_ACCESS_KEY_ID {key!r}: expected at least 3 characters, no '/', ',' or "
                         "whitespace")
    return key, secret


def _lock(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateError(f"{state_dir}: state dir is in use by another s3server") from None
    return fd  # held until the process exits


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m har.stack.s3server", description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--buckets", default="", help="comma-separated buckets to create if missing")
    ap.add_argument("--save-interval", type=float, default=2.0,
                    help="seconds between saves of changed objects (default 2)")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    return ap.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    if args.save_interval <= 0:
        raise StateError(f"--save-interval {args.save_interval}: expected a positive number of seconds")
    key, secret = _credentials()
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    lock_fd = _lock(args.state_dir)
    _moto()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    store = StateStore(args.state_dir)
    n = store.restore()
    register_credentials(key, secret)
    backend = s3_backend()
    for bucket in filter(None, (b.strip() for b in args.buckets.split(","))):
        if bucket not in backend.buckets:
            try:
                backend.create_bucket(bucket, region)
            except Exception as err:  # moto's InvalidBucketName & co. carry no useful str()
                raise StateError(f"--buckets: cannot create {bucket!r}: "
                                 f"{type(err).__name__} {getattr(err, 'message', '')}") from None
    store.save()  # new buckets and a fresh index are on disk before anyone can talk to us

    def health() -> dict[str, Any]:
        return {"status": "ok", "buckets": sorted(list(backend.buckets)), "saves": store.saves,
                "last_save": store.last_save}

    app = guarded(DomainDispatcherApplication(create_backend_app), health)
    try:
        server = make_server(args.host, args.port, app, threaded=True,
                             request_handler=MotoRequestHandler)
    except OSError as err:
        raise StateError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="s3server", daemon=True)
    thread.start()
    log.info("s3server: http://%s:%d, %d objects restored from %s, health %s", args.host,
                args.port, n, args.state_dir, HEALTH_PATH)
    while not stop.wait(args.save_interval):
        try:
            store.save()
        except Exception as err:  # keep serving; the next round (or shutdown) tries again
            log.error("s3server: periodic save failed: %s: %s", type(err).__name__, err)
    server.shutdown()
    thread.join()
    store.save()
    os.close(lock_fd)
    log.info("s3server: stopped, state saved to %s", args.state_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        return serve(args)
    except StateError as err:
        print(f"s3server: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
