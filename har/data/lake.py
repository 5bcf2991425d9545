"""The raw-data lake: dataset files and own recordings kept in S3, each object carrying its sha256.

Layout under ``s3://bucket/prefix`` (the same layout as a folder mirror, so ``HAR_DATA_MIRROR`` can
name either):

- ``<prefix>/<dataset folder>/<path from the manifest>``, e.g. ``raw/hapt/RawData/labels.txt``;
- ``<prefix>/own/<file name>`` for canonical parquet files written by ``har data import``.

The committed sha256 manifest decides what may be used: ``push`` uploads only a copy that verifies,
``fetch_from_lake`` refuses an object whose sha256 metadata disagrees with the manifest before
downloading anything, then assembles and verifies the copy exactly like a folder mirror
(``har.data.fetch.install_verified``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from har.data.fetch import install_verified, read_manifest, verify
from har.data.registry import DatasetSpec
from har.errors import DataError
from har.io import sha256_file
from har.logging import get_logger
from har.s3 import (
    ObjectInfo,
    S3Client,
    S3Error,
    describe,
    download_file,
    ensure_bucket,
    head_object,
    join_key,
    list_objects,
    s3_client,
    split_s3_url,
    upload_file,
)

log = get_logger(__name__)

OWN_FOLDER = "own"
WORKERS = 4  # concurrent requests: hides round trips without flooding a small server


@contextmanager
def _progress(description: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
    """A byte progress bar (rich, transient); yields a thread-safe ``advance(n_bytes)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total_bytes or None)
        yield lambda n: bar.advance(task, n)


def _heads(client: S3Client, bucket: str, keys: list[str]) -> dict[str, ObjectInfo | None]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(keys, pool.map(lambda k: head_object(client, bucket, k), keys), strict=True))


def fetch_from_lake(url: str, spec: DatasetSpec, target: Path, manifest: dict[str, str],
                    client: S3Client | None = None) -> Path | None:
    """Download spec's files from the lake into target, verified; None when the lake has none.

    Every manifest object must exist, and one whose sha256 metadata disagrees with the manifest is
    refused before any download starts.
    """
    bucket, prefix = split_s3_url(url)
    root = join_key(prefix, spec.folder)
    client = client or s3_client()
    present = list_objects(client, bucket, root + "/")
    if not present:
        log.warning("no objects under %s; trying the next source", describe(bucket, root + "/"))
        return None
    keys = {rel: join_key(root, rel) for rel in manifest}
    for key in keys.values():
        if key not in present:
            raise DataError(f"{describe(bucket, key)}: missing (listed in the sha256 manifest)")
    infos = _heads(client, bucket, list(keys.values()))
    for rel, key in keys.items():
        info = infos[key]
        if info is None:
            raise DataError(f"{describe(bucket, key)}: missing (listed in the sha256 manifest)")
        if info.sha256 is not None and info.sha256 != manifest[rel]:
            raise DataError(f"{describe(bucket, key)}: sha256 metadata {info.sha256} disagrees with "
                            f"the manifest {manifest[rel]}; refusing to download it")
    log.info("downloading %d files from %s", len(keys), describe(bucket, root))
    total = sum(present[k] for k in keys.values())
    with _progress(f"fetch {spec.name}", total) as advance:
        def get(rel: str, dest: Path) -> None:
            download_file(client, bucket, keys[rel], dest, callback=advance)

        return install_verified(target, manifest, get, workers=WORKERS)


@dataclass
class PushReport:
    url: str
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0


def _check_own(path: Path) -> None:
    """Only canonical recordings parquet (as `har data import` writes it) goes into own/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from har.data.ingest import COLUMNS

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{path}: not a readable parquet file: {err}") from None
    meta = schema.metadata or {}
    if schema.names != COLUMNS or b"har.sampling_rate_hz" not in meta:
        raise DataError(f"{path}: not a canonical recordings parquet (columns {COLUMNS} and "
                        "har.* metadata, as written by `har data import`)")


def push(url: str, spec: DatasetSpec, raw_dir: Path, own: list[Path] | None = None, *,
         create_bucket: bool = False, client: S3Client | None = None) -> PushReport:
    """Upload the verified raw copy of spec (and own recordings) to the lake at url.

    Objects already there with the same sha256 metadata are skipped, so pushing twice uploads
    nothing the second time.
    """
    bucket, prefix = split_s3_url(url)
    manifest = read_manifest(spec.manifest)
    src = raw_dir / spec.folder
    if not src.is_dir():
        raise DataError(f"{src}: no local copy of {spec.name} to push; run `har data fetch` first")
    verify(src, manifest)  # only a copy the manifest vouches for goes into the lake
    # (local path, key, sha256)
    files = [(src / rel, join_key(prefix, spec.folder, rel), sha) for rel, sha in manifest.items()]
    own_keys: dict[str, Path] = {}
    for path in own or []:
        _check_own(path)
        key = join_key(prefix, OWN_FOLDER, path.name)
        if key in own_keys:
            raise DataError(f"{path}: same file name as {own_keys[key]}; both would be "
                            f"{describe(bucket, key)}")
        own_keys[key] = path
        files.append((path, key, sha256_file(path)))

    client = client or s3_client()
    if create_bucket and ensure_bucket(client, bucket):
        log.info("created bucket %s", describe(bucket))
    existing: dict[str, int] = {}
    try:
        for folder in [spec.folder] + ([OWN_FOLDER] if own_keys else []):
            existing |= list_objects(client, bucket, join_key(prefix, folder) + "/")
    except S3Error as err:
        if err.code == "NoSuchBucket":
            raise S3Error(f"{err} (create it, or pass --create-bucket)", err.code) from None
        raise
    same_size = [key for path, key, _ in files if existing.get(key) == path.stat().st_size]
    infos = _heads(client, bucket, same_size)
    report = PushReport(url=url)
    todo = []
    for path, key, sha in files:
        info = infos.get(key)
        if info is not None and info.sha256 == sha:
            report.unchanged.append(key)
        else:
            todo.append((path, key, sha))
    total = sum(path.stat().st_size for path, _, _ in todo)
    if todo:
        with _progress(f"push {len(todo)} files", total) as advance, \
                ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda t: upload_file(client, t[0], bucket, t[1], t[2], callback=advance),
                          todo))
    report.uploaded = [key for _, key, _ in todo]
    report.bytes_uploaded = total
    return report
