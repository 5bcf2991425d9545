"""The local S3 server (`python -m har.stack.s3server`) over real HTTP on 127.0.0.1: credentials
enforced, state kept across a clean restart, a crash loses at most the unsaved changes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from tests.conftest import S3Server


def _snapshot(client: Any) -> dict[str, Any]:
    """Every bucket, and per object what a client sees: content, metadata, type, ETag, time."""
    out: dict[str, Any] = {}
    for b in client.list_buckets()["Buckets"]:
        objects = {}
        for o in client.list_objects_v2(Bucket=b["Name"]).get("Contents", []):
            r = client.get_object(Bucket=b["Name"], Key=o["Key"])
            objects[o["Key"]] = (r["Body"].read(), r["Metadata"], r["ContentType"], r["ETag"],
                                 r["LastModified"])
        out[b["Name"]] = objects
    return out


def test_restart_keeps_buckets_objects_and_metadata(s3_server: S3Server, tmp_path: Path) -> None:
    client = s3_server.client()
    s3_server.bucket("lake")
    s3_server.bucket("gone")
    client.put_object(Bucket="lake", Key="raw/a b/ü.txt", Body=b"hello", ContentType="text/plain",
                      Metadata={"sha256": "0" * 64, "Under_Score": "kept"})
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))
    # multipart: its ETag ("<md5>-2") is not the md5 of the content and must survive as is
    client.upload_file(str(big), "lake", "models/big.bin", ExtraArgs={"Metadata": {"k": "v"}},
                       Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    client.put_object(Bucket="lake", Key="deleted.txt", Body=b"x")
    client.delete_object(Bucket="lake", Key="deleted.txt")
    client.delete_bucket(Bucket="gone")
    before = _snapshot(client)
    assert before["lake"]["models/big.bin"][3].endswith('-2"')

    assert s3_server.stop() == 0  # SIGTERM: clean shutdown, state saved
    s3_server.start()
    assert _snapshot(s3_server.client()) == before
    assert set(before) == {"lake"}


def test_kill9_loses_at_most_what_changed_since_the_last_save(s3_server: S3Server) -> None:
    s3_server.stop()
    s3_server.start(save_interval_s=0.3)
    client = s3_server.client()
    s3_server.bucket("lake")
    client.put_object(Bucket="lake", Key="a.txt", Body=b"saved", Metadata={"sha256": "a" * 64})
    written = time.time()
    deadline = time.monotonic() + 10
    while (s3_server.health()["last_save"] or 0) <= written:  # a periodic save after the write
        assert time.monotonic() < deadline, "no periodic save within 10 s"
        time.sleep(0.1)
    assert s3_server.stop(kill=True) == -9

    s3_server.start(save_interval_s=3600)  # no periodic save from here on
    client = s3_server.client()
    assert client.get_object(Bucket="lake", Key="a.txt")["Body"].read() == b"saved"
    assert client.head_object(Bucket="lake", Key="a.txt")["Metadata"] == {"sha256": "a" * 64}
    client.put_object(Bucket="lake", Key="b.txt", Body=b"unsaved")
    assert s3_server.stop(kill=True) == -9

    s3_server.start()
    client = s3_server.client()
    assert client.get_object(Bucket="lake", Key="a.txt")["Body"].read() == b"saved"
    with pytest.raises(ClientError, match="NoSuchKey"):
        client.get_object(Bucket="lake", Key="b.txt")


def test_saves_under_concurrent_writes_restore_exactly(s3_server: S3Server) -> None:
    """Periodic saves racing with PUT/DELETE from several threads never store a torn object."""
    s3_server.stop()
    s3_server.start(save_interval_s=0.05, buckets="lake")
    client = s3_server.client()
    rng = random.Random(7)
    # each thread its own keys: moto itself 500s on concurrent PUTs of one key (boto3 retries)
    plan = [[(f"t{t}/k{rng.randrange(4)}", rng.random(), rng.randrange(1, 300_000))
             for _ in range(60)] for t in range(4)]

    def writer(ops: list[tuple[str, float, int]]) -> None:
        for i, (key, op, size) in enumerate(ops):
            if op < 0.75:
                client.put_object(Bucket="lake", Key=key, Body=os.urandom(size),
                                  Metadata={"i": str(i)})
            else:
                client.delete_object(Bucket="lake", Key=key)

    threads = [threading.Thread(target=writer, args=(ops,)) for ops in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    before = _snapshot(client)
    assert s3_server.stop() == 0
    s3_server.start()
    assert _snapshot(s3_server.client()) == before


def _client(server: S3Server, key: str, secret: str) -> Any:
    return boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=key,
                        aws_secret_access_key=secret, region_name=server.region,
                        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


@pytest.mark.parametrize(("which", "code"), [("key", "InvalidAccessKeyId"),
                                             ("secret", "SignatureDoesNotMatch")])
def test_a_wrong_key_pair_is_refused(s3_server: S3Server, which: str, code: str) -> None:
    s3_server.bucket("lake")
    key, secret = s3_server.access_key_id, s3_server.secret_access_key
    bad = _client(s3_server, "AKIAWRONGWRONGWRONG1" if which == "key" else key,
                  "wrong-secret" if which == "secret" else secret)
    for call in (lambda: bad.list_objects_v2(Bucket="lake"),
                 lambda: bad.put_object(Bucket="lake", Key="x", Body=b"x"),
                 lambda: bad.create_bucket(Bucket="other")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == code
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    good = _client(s3_server, key, secret)
    assert [b["Name"] for b in good.list_buckets()["Buckets"]] == ["lake"]
    assert "Contents" not in good.list_objects_v2(Bucket="lake")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/lake"),                       # anonymous listing
    ("GET", "/lake/x?X-Amz-Credential=a"),  # presigned-style: moto cannot check it
    ("GET", "/moto-api/data.json"),         # would dump every object
    ("POST", "/moto-api/reset"),            # would wipe the store
    ("POST", "/moto-api/reset-auth"),       # would switch authentication off
])
def test_unsigned_and_management_requests_are_refused(s3_server: S3Server, method: str,
                                                      path: str) -> None:
    s3_server.bucket("lake")
    s3_server.client().put_object(Bucket="lake", Key="x", Body=b"secret")
    req = urllib.request.Request(s3_server.endpoint + path, method=method,
                                 data=b"inf" if method == "POST" else None)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 403
    assert b"<Code>AccessDenied</Code>" in err.value.read()
    assert s3_server.client().get_object(Bucket="lake", Key="x")["Body"].read() == b"secret"


def test_buckets_option_and_health(s3_server: S3Server) -> None:
    s3_server.stop()
    s3_server.start(buckets="lake,dvc-remote")
    health = s3_server.health()
    assert health["status"] == "ok" and health["buckets"] == ["dvc-remote", "lake"]
    assert health["saves"] >= 1  # the state is on disk before the socket opens
    index = json.loads((s3_server.state_dir / "index.json").read_text())
    assert set(index["buckets"]) == {"dvc-remote", "lake"}


def _run_server(server: S3Server, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "har.stack.s3server", "--port", str(server.port),
                           "--state-dir", str(server.state_dir), *extra],
                          env={**os.environ, **server.env()}, capture_output=True, text=True,
                          timeout=60)


def test_state_dir_is_locked_and_damage_is_reported(s3_server: S3Server) -> None:
    s3_server.bucket("lake")
    s3_server.client().put_object(Bucket="lake", Key="k", Body=b"content")
    res = _run_server(s3_server)  # same state dir while the first server runs
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"s3server: error: {s3_server.state_dir}: state dir is in use by another s3server"]

    assert s3_server.stop() == 0
    blob = next((s3_server.state_dir / "blobs").glob("*/*"))
    blob.write_bytes(b"rot")
    res = _run_server(s3_server)
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()
    assert f"{blob}: blob of s3://lake/k is damaged" in line
