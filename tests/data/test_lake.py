"""The raw-data lake over real HTTP on 127.0.0.1 (the `s3_server` fixture): push to and fetch from
an s3:// mirror, sha256 manifest and metadata enforced, one-line errors, bounded retries."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from har.data import lake
from har.data.fetch import fetch_dataset, read_manifest, verify
from har.data.ingest import read_hapt
from har.data.registry import DatasetSpec, get_dataset
from har.errors import DataError, HarError
from har.s3 import S3Error, s3_client

if TYPE_CHECKING:
    from tests.conftest import S3Server

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
HAR = [sys.executable, "-m", "har.cli"]
LAKE = "s3://lake/raw"


def _har(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HAR, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


TOY = {
    "activity_labels.txt": b"1 WALKING\n2 SITTING\n",
    "RawData/acc_exp01_user01.txt": b"0.1 0.2 0.9\n" * 4000,
    "RawData/gyro_exp01_user01.txt": b"0.0 0.1 0.0\n" * 4000,
    "RawData/labels.txt": b"1 1 1 1 200\n1 1 2 201 400\n",
}


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    """A small dataset with its own manifest and a verified local copy in tmp_path/raw/toy."""
    for rel, data in TOY.items():
        (tmp_path / "raw" / "toy" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / "toy" / rel).write_bytes(data)
    manifest = tmp_path / "toy.sha256"
    manifest.write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n"
                                for rel, d in sorted(TOY.items())))
    monkeypatch.setattr(DatasetSpec, "manifest", property(lambda self: manifest))
    return DatasetSpec(name="toy", uci_id=0, url="http://127.0.0.1:1/none.zip", folder="toy",
                       reader=read_hapt, sampling_rate_hz=50.0)


# ---------------------------------------------------------------------------------------------
# The whole HAPT mirror through the CLI: fetch (folder mirror) → push → push again → fetch (lake)


@pytest.mark.integration
@pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")
def test_push_then_fetch_the_real_mirror(s3_server: S3Server, tmp_path: Path) -> None:
    manifest = read_manifest(get_dataset("hapt").manifest)
    first = _project(tmp_path / "first")
    res = _har(first, "data", "fetch", HAR_DATA_MIRROR=str(MIRROR))
    assert res.returncode == 0, res.stderr

    res = _har(first, "data", "push", "--to", LAKE, "--create-bucket")
    assert res.returncode == 0, res.stderr
    assert f"{LAKE}: {len(manifest)} uploaded" in res.stdout
    client = s3_server.client()
    for rel, sha in manifest.items():
        head = client.head_object(Bucket="lake", Key=f"raw/hapt/{rel}")
        assert head["Metadata"] == {"sha256": sha}

    res = _har(first, "data", "push", "--to", LAKE)  # same content: nothing to upload
    assert res.returncode == 0, res.stderr
    assert f"{LAKE}: 0 uploaded (0.0 MB), {len(manifest)} unchanged" in res.stdout

    # a fresh project whose only source is the lake (HAR_DATA_MIRROR names it; no internet here)
    second = _project(tmp_path / "second")
    res = _har(second, "data", "fetch", HAR_DATA_MIRROR=LAKE)
    assert res.returncode == 0, res.stderr
    assert "verified dataset at data/raw/hapt" in res.stdout
    out = second / "data" / "raw" / "hapt"
    verify(out, manifest)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(manifest)
    assert [p.name for p in (second / "data" / "raw").iterdir()] == ["hapt"]  # no temp leftovers


# ---------------------------------------------------------------------------------------------
# Checksums: the manifest decides, the object metadata is checked before any download


@pytest.mark.parametrize(("corruption", "message"), [
    # wrong bytes, metadata claiming the manifest's sha256: caught while downloading
    ("lying_metadata", r"s3://lake/raw/toy/RawData/labels\.txt: sha256 mismatch: metadata says"),
    # wrong bytes with their own sha256: refused before anything is downloaded
    ("honest_metadata", r"s3://lake/raw/toy/RawData/labels\.txt: sha256 metadata [0-9a-f]{64} "
                        r"disagrees with the manifest [0-9a-f]{64}; refusing to download it"),
    # wrong bytes, no metadata (another tool uploaded it): the manifest check after download
    ("no_metadata", r"RawData/labels\.txt: sha256 mismatch: expected [0-9a-f]{64}"),
])
def test_a_corrupted_object_is_refused_and_the_target_untouched(
        s3_server: S3Server, toy: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        corruption: str, message: str) -> None:
    s3_server.bucket("lake")
    lake.push(LAKE, toy, tmp_path / "raw")
    bad = b"1 1 1 1 999\n"
    sha = hashlib.sha256(bad).hexdigest()
    metadata = {"lying_metadata": {"sha256": hashlib.sha256(TOY["RawData/labels.txt"]).hexdigest()},
                "honest_metadata": {"sha256": sha}, "no_metadata": {}}[corruption]
    s3_server.client().put_object(Bucket="lake", Key="raw/toy/RawData/labels.txt", Body=bad,
                                  Metadata=metadata)
    # an existing copy that fails verification: it may only be replaced by a verified one
    raw = tmp_path / "project" / "raw"
    shutil.copytree(tmp_path / "raw" / "toy", raw / "toy")
    (raw / "toy" / "RawData" / "acc_exp01_user01.txt").write_bytes(b"stale")
    before = {p: p.read_bytes() for p in (raw / "toy").rglob("*") if p.is_file()}
    downloads: list[str] = []
    real_download = lake.download_file

    def counting_download(client: object, bucket: str, key: str, *args: object,
                          **kwargs: object) -> str:
        downloads.append(key)
        return real_download(client, bucket, key, *args, **kwargs)

    monkeypatch.setattr(lake, "download_file", counting_download)

    with pytest.raises(HarError, match=message):
        fetch_dataset("toy", raw, LAKE, spec=toy)
    assert {p: p.read_bytes() for p in (raw / "toy").rglob("*") if p.is_file()} == before
    assert [p.name for p in raw.iterdir()] == ["toy"]  # no temp folder left behind
    if corruption == "honest_metadata":
        assert downloads == []


def test_an_existing_verified_copy_needs_no_lake(toy: DatasetSpec, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    assert fetch_dataset("toy", tmp_path / "raw", LAKE, spec=toy) == tmp_path / "raw" / "toy"


def test_an_empty_lake_falls_through_to_the_download(s3_server: S3Server, toy: DatasetSpec,
                                                     tmp_path: Path) -> None:
    s3_server.bucket("lake")
    with pytest.raises(DataError, match=r"127\.0\.0\.1:1/none\.zip: download failed"):
        fetch_dataset("toy", tmp_path / "fresh", LAKE, retries=0, timeout_s=2, spec=toy)


# ---------------------------------------------------------------------------------------------
# Push: verified copies only, own recordings, nothing uploaded twice


def _own_parquet(path: Path) -> Path:
    import numpy as np
    import pandas as pd

    from har.data.ingest import write_recordings
    from har.data.own import import_recordings

    t = np.arange(0, 2, 0.02)
    pd.DataFrame({"timestamp": t, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0}).to_csv(
        path.with_suffix(".csv"), index=False)
    write_recordings(import_recordings([path.with_suffix(".csv")]), path, sampling_rate_hz=50.0,
                     source="own")
    return path


def test_push_own_recordings_and_skip_unchanged(s3_server: S3Server, toy: DatasetSpec,
                                                tmp_path: Path) -> None:
    s3_server.bucket("lake")
    own = _own_parquet(tmp_path / "walk.parquet")
    r = lake.push(LAKE, toy, tmp_path / "raw", [own])
    assert sorted(r.uploaded) == sorted([f"raw/toy/{rel}" for rel in TOY] + ["raw/own/walk.parquet"])
    head = s3_server.client().head_object(Bucket="lake", Key="raw/own/walk.parquet")
    assert head["Metadata"]["sha256"] == hashlib.sha256(own.read_bytes()).hexdigest()

    again = lake.push(LAKE, toy, tmp_path / "raw", [own])
    assert again.uploaded == [] and len(again.unchanged) == len(TOY) + 1

    (tmp_path / "raw" / "toy" / "activity_labels.txt").write_bytes(b"1 WALKING\n")
    with pytest.raises(DataError, match=r"toy/activity_labels\.txt: sha256 mismatch"):
        lake.push(LAKE, toy, tmp_path / "raw", [own])  # an unverified copy never reaches the lake


def test_push_refuses_a_non_canonical_file_and_a_missing_bucket(
        s3_server: S3Server, toy: DatasetSpec, tmp_path: Path) -> None:
    csv = tmp_path / "walk.csv"
    csv.write_text("timestamp,acc_x,acc_y,acc_z\n0,0,0,1\n")
    with pytest.raises(DataError, match=r"walk\.csv: not a readable parquet file"):
        lake.push(LAKE, toy, tmp_path / "raw", [csv])
    with pytest.raises(S3Error, match=rf"s3://lake/raw/toy/ at {s3_server.endpoint}: bucket 'lake' "
                                      r"does not exist \(create it, or pass --create-bucket\)"):
        lake.push(LAKE, toy, tmp_path / "raw")
    assert len(lake.push(LAKE, toy, tmp_path / "raw", create_bucket=True).uploaded) == len(TOY)


# ---------------------------------------------------------------------------------------------
# Failures reach the user as one line naming the endpoint and the bucket


def test_a_refused_upload_is_one_s3_error(s3_server: S3Server, tmp_path: Path) -> None:
    from har.s3 import upload_file

    path = tmp_path / "f.txt"
    path.write_text("x")
    # boto3's transfer manager wraps the server's refusal in its own S3UploadFailedError
    with pytest.raises(S3Error, match=rf"^s3://nobucket/f\.txt at {s3_server.endpoint}: bucket "
                                      r"'nobucket' does not exist$"):
        upload_file(s3_server.client(), path, "nobucket", "f.txt")


@pytest.mark.parametrize(("case", "hint"), [
    ("wrong_key", "the access key id is not known to the server (check AWS_ACCESS_KEY_ID"),
    ("wrong_secret", "the secret key does not match the access key id (check AWS_SECRET_ACCESS_KEY"),
    ("missing_bucket", "bucket 'no-such-bucket' does not exist"),
])
def test_cli_s3_errors_are_one_line(s3_server: S3Server, tmp_path: Path, case: str, hint: str) -> None:
    s3_server.bucket("lake")
    env = {"wrong_key": {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1"},
           "wrong_secret": {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}}.get(case, {})
    url = "s3://no-such-bucket/raw" if case == "missing_bucket" else LAKE
    res = _har(_project(tmp_path / "p"), "data", "fetch", "--mirror", url, **env)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr + res.stdout
    (line,) = res.stderr.strip().splitlines()
    bucket = url.split("/")[2]
    assert line.startswith(f"error: s3://{bucket}/raw/hapt/ at {s3_server.endpoint}: "), line
    assert hint in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_endpoint_fails_after_bounded_retries(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    start = time.monotonic()
    res = _har(_project(tmp_path / "p"), "data", "fetch", "--mirror", LAKE, **env)
    elapsed = time.monotonic() - start
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: s3://lake/raw/hapt/ at {endpoint}: cannot reach the S3 "
                           "endpoint after 3 attempts"), line
    assert elapsed < 30  # 3 attempts with backoff, not a hang


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections and never answers: only a read timeout ends a request."""
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for conn in held:
        conn.close()
    srv.close()


def test_a_silent_endpoint_times_out(silent_endpoint: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ENDPOINT_URL_S3": silent_endpoint, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                       "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_CONFIG_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    client = s3_client(max_attempts=2, connect_timeout=1, read_timeout=1)
    start = time.monotonic()
    with pytest.raises(S3Error, match=rf"s3://lake at {silent_endpoint}: cannot reach the S3 "
                                      r"endpoint after 2 attempts \(Read timeout"):
        lake.list_objects(client, "lake", "")
    assert time.monotonic() - start < 15
