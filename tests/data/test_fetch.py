"""Sourcing: mirror copy, checksum mismatch, and a real HTTP download interrupted then resumed."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from har.data.fetch import download, fetch_dataset, read_manifest
from har.data.ingest import read_hapt
from har.data.registry import DatasetSpec
from har.errors import DataError


def _fake_dataset(root: Path) -> dict[str, bytes]:
    files = {
        "activity_labels.txt": b"1 WALKING\n2 SITTING\n",
        "RawData/acc_exp01_user01.txt": b"0.1 0.2 0.9\n" * 8000,
        "RawData/gyro_exp01_user01.txt": b"0.0 0.1 0.0\n" * 8000,
        "RawData/labels.txt": b"1 1 1 1 200\n1 1 2 201 400\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    src = tmp_path / "mirror" / "toy"
    files = _fake_dataset(src)
    manifest = tmp_path / "toy.sha256"
    manifest.write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n"
                                for rel, d in sorted(files.items())))
    s = DatasetSpec(name="toy", uci_id=0, url="http://127.0.0.1:1/none.zip", folder="toy", reader=read_hapt,
                    sampling_rate_hz=50.0)
    monkeypatch.setattr(DatasetSpec, "manifest", property(lambda self: manifest))
    return s


def test_copy_from_mirror_is_verified(tmp_path: Path, spec: DatasetSpec) -> None:
    out = fetch_dataset("toy", tmp_path / "raw", tmp_path / "mirror", spec=spec)
    assert (out / "RawData" / "labels.txt").read_bytes().startswith(b"1 1 1 1 200")
    assert set(read_manifest(spec.manifest)) == {
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    # A second call reuses the verified copy even with no mirror.
    assert fetch_dataset("toy", tmp_path / "raw", None, spec=spec) == out


def test_checksum_mismatch_is_clear_and_copy_not_used(tmp_path: Path, spec: DatasetSpec) -> None:
    bad = tmp_path / "mirror" / "toy" / "RawData" / "labels.txt"
    bad.write_bytes(b"1 1 1 1 201\n")
    with pytest.raises(DataError, match=r"labels\.txt: sha256 mismatch: expected [0-9a-f]{64}"):
        fetch_dataset("toy", tmp_path / "raw", tmp_path / "mirror", spec=spec)
    assert not (tmp_path / "raw" / "toy").exists()
    assert not [p for p in (tmp_path / "raw").iterdir() if p.name.startswith(".toy")]


def test_good_copy_survives_a_bad_mirror(tmp_path: Path, spec: DatasetSpec) -> None:
    out = fetch_dataset("toy", tmp_path / "raw", tmp_path / "mirror", spec=spec)
    (tmp_path / "mirror" / "toy" / "RawData" / "labels.txt").write_bytes(b"garbage")
    assert fetch_dataset("toy", tmp_path / "raw", tmp_path / "mirror", spec=spec) == out
    assert (out / "RawData" / "labels.txt").read_bytes().startswith(b"1 1 1 1 200")


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload: bytes = b""
    drop_first: bool = True
    ranges: list[str] = []

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        type(self).ranges.append(rng or "")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/"
                                              f"{len(self.payload)}")
        self.end_headers()
        if type(self).drop_first:
            type(self).drop_first = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, type[_RangeHandler]]]:
    src = tmp_path / "zipsrc" / "HAPT Data Set"
    _fake_dataset(src)
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for p in src.rglob("*"):
            zf.write(p, p.relative_to(src.parent))
    handler = type("H", (_RangeHandler,), {"payload": archive.read_bytes(), "drop_first": True,
                                           "ranges": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/toy.zip", handler
    httpd.shutdown()


def test_download_interrupted_then_resumed(tmp_path: Path, spec: DatasetSpec, server) -> None:
    url, handler = server
    out = fetch_dataset("toy", tmp_path / "raw", None, url=url, retries=2, spec=spec)
    assert (out / "RawData" / "acc_exp01_user01.txt").stat().st_size > 0
    assert handler.ranges[0] == ""
    assert handler.ranges[1].startswith("bytes=") and handler.ranges[1] != "bytes=0-"
    assert not (tmp_path / "raw" / "toy.zip").exists()


def test_download_gives_up_with_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download failed after 2 attempts"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", retries=1, timeout_s=2,
                 backoff_s=0.01)


def test_unknown_dataset_is_a_clear_value_error() -> None:
    from har.data.registry import get_dataset

    with pytest.raises(ValueError, match="known: hapt"):
        get_dataset("nope")
