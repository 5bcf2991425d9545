"""Get a verified copy of a dataset: existing raw copy → mirror (a folder, or the s3:// lake in
har/data/lake.py) → official download; or, for your own recordings, a snapshot of data.own_dir.

Every file is checked against the committed sha256 manifest (own recordings: against the hashes
of the files it copies). A copy is assembled in a temporary folder beside the target and renamed
into place only once verified, so a bad copy is never used and a good one is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import requests
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from har.data.own import check_columns, own_files
from har.data.registry import DatasetSpec, get_dataset
from har.errors import DataError
from har.io import sha256_file
from har.logging import get_logger

log = get_logger(__name__)


def read_manifest(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{n}: expected 'SHA256  relative/path', got {line!r}")
        entries[parts[1].strip()] = parts[0]
    return entries


def verify(root: Path, manifest: dict[str, str]) -> None:
    """Raise DataError naming the first missing or mismatching file."""
    for rel, expected in manifest.items():
        path = root / rel
        if not path.is_file():
            raise DataError(f"{path}: missing (listed in the sha256 manifest)")
        actual = sha256_file(path)
        if actual != expected:
            raise DataError(f"{path}: sha256 mismatch: expected {expected}, got {actual}")


def install_verified(target: Path, manifest: dict[str, str], put: Callable[[str, Path], None],
                     workers: int = 1) -> Path:
    """``put(rel, dest)`` every manifest file into a temp dir beside target, verify, rename into
    place. The one assembly path for every source (folder mirror, S3 lake, extracted zip)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for rel in manifest:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        if workers <= 1:
            for rel in manifest:
                put(rel, tmp / rel)
        else:  # network sources: overlap round trips; the first failure cancels the rest
            with ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(put, rel, tmp / rel) for rel in manifest]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    pool.shutdown(cancel_futures=True)
                    failed[0].result()  # re-raises the first failure
        verify(tmp, manifest)
        if target.exists():
            shutil.rmtree(target)  # only reached when the existing copy failed verification
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _install(src_root: Path, target: Path, manifest: dict[str, str]) -> Path:
    """Copy manifest files from src_root to a temp dir beside target, verify, rename into place."""

    def copy(rel: str, dest: Path) -> None:
        src = src_root / rel
        if not src.is_file():
            raise DataError(f"{src}: missing (listed in the sha256 manifest)")
        shutil.copyfile(src, dest)

    return install_verified(target, manifest, copy)


def download(url: str, dest: Path, retries: int = 3, timeout_s: float = 60,
             backoff_s: float = 1.0) -> Path:
    """Download url to dest, resuming a partial ``dest.part`` with HTTP Range; retry with backoff."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as r:
                if r.status_code == 416:  # already complete
                    break
                r.raise_for_status()
                if have and r.status_code != 206:  # server ignored Range: start over
                    have = 0
                total = int(r.headers.get("Content-Length", 0)) + have
                mode = "ab" if have else "wb"
                with part.open(mode) as f, Progress(
                    "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), transient=True,
                ) as bar:
                    task = bar.add_task(f"download {dest.name}", total=total or None,
                                        completed=have)
                    for chunk in r.iter_content(chunk_size=1 << 14):
                        f.write(chunk)
                        bar.advance(task, len(chunk))
                if total and part.stat().st_size < total:
                    raise OSError(f"connection closed at {part.stat().st_size}/{total} bytes")
            break
        except (requests.RequestException, OSError) as err:
            last = err
            log.warning("download attempt %d/%d failed: %s", attempt + 1, retries + 1, err)
            time.sleep(backoff_s * 2**attempt)
    else:
        raise DataError(f"{url}: download failed after {retries + 1} attempts: {last}")
    os.replace(part, dest)
    return dest


def _dataset_root(extracted: Path) -> Path:
    hits = sorted(p.parent for p in extracted.rglob("RawData") if p.is_dir())
    if not hits:
        raise DataError(f"{extracted}: archive has no RawData/ folder")
    return hits[0]


def fetch_dataset(name: str, raw_dir: Path, mirror: Path | str | None, url: str | None = None,
                  retries: int = 3, timeout_s: float = 60,
                  spec: DatasetSpec | None = None) -> Path:
    """A verified copy in raw_dir/<folder>. mirror: a folder holding <folder>/, or an
    ``s3://bucket/prefix`` lake holding <folder>/ objects (see har/data/lake.py)."""
    spec = spec or get_dataset(name)
    if spec.url is None:
        raise DataError(f"dataset {spec.name!r} has no download: its files are yours "
                        "(har.data.fetch.fetch_own snapshots data.own_dir)")
    manifest = read_manifest(spec.manifest)
    target = raw_dir / spec.folder
    if target.exists():
        try:
            verify(target, manifest)
            log.info("using verified copy %s", target)
            return target
        except DataError as err:
            log.warning("existing copy is not valid (%s); sourcing again", err)
    if isinstance(mirror, str) and mirror.startswith("s3:"):
        from har.data.lake import fetch_from_lake

        out = fetch_from_lake(mirror, spec, target, manifest)
        if out is not None:
            return out
    elif mirror is not None and (Path(mirror) / spec.folder).is_dir():
        log.info("copying from mirror %s", Path(mirror) / spec.folder)
        return _install(Path(mirror) / spec.folder, target, manifest)
    with tempfile.TemporaryDirectory(dir=raw_dir.parent if raw_dir.parent.exists() else None) as t:
        archive = download(url or spec.url, raw_dir / f"{spec.name}.zip", retries, timeout_s)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(t)
        root = _dataset_root(Path(t))
        out = _install(root, target, manifest)
    archive.unlink(missing_ok=True)
    return out


def fetch_own(own_dir: Path, target: Path) -> Path:
    """A verified snapshot of the recordings in ``own_dir`` (data.own_dir) at ``target``.

    Only .csv/.parquet files are taken (sub-folders too), each checked for the own-recordings
    columns first; the copies are checked against the sha256 of the originals. An unchanged
    snapshot is kept as it is, a changed folder replaces it whole (DVC keeps the old one).
    """
    files = own_files(own_dir)
    for f in files:
        check_columns(f)
    manifest = {f.relative_to(own_dir).as_posix(): sha256_file(f) for f in files}
    if target.is_dir():
        present = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        try:
            if present == set(manifest):
                verify(target, manifest)
                log.info("snapshot %s matches %s", target, own_dir)
                return target
        except DataError:
            pass  # a changed recording: snapshot again
    log.info("snapshotting %d recordings of %s into %s", len(manifest), own_dir, target)

    def copy(rel: str, dest: Path) -> None:
        shutil.copyfile(own_dir / rel, dest)

    return install_verified(target, manifest, copy)
