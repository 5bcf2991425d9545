"""Atomic file writes: a stage writes to a temp file beside the target and renames it into place,
so a failing run never leaves a half-written or overwritten good output. Also the one file hasher."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc), else by the set-and-restore
    dance, which is only racy against other threads creating files at that very moment."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in path's folder; on success it replaces ``path``, on error it is removed.

    The result has the permissions a plain ``open()`` would give (0666 less the umask), not
    mkstemp's 0600: a server running as another user must be able to read models/model.onnx.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=suffix, dir=path.parent)
    try:
        # on the temp file, before the rename: the target never exists with the wrong mode
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        if Path(tmp).exists():
            # writers that replace the temp file (unlink + create) get the same mode back
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as indented JSON at ``path``, atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# (resolved path, size, mtime_ns) → sha256: a file is read once per process while it is unchanged,
# so hashing the same raw-data folder for several stages' cache keys costs one pass.
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """``sha256_file`` with the per-process memo (same path, size and mtime: not read again)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = sha256_file(path)
    return _SHA_MEMO[key]


def content_digest(paths: list[Path] | tuple[Path, ...]) -> str:
    """One sha256 over the contents of ``paths`` (files, or folders walked in sorted order; names
    relative to each folder are part of it, hidden entries are not). A missing path counts as
    "missing" rather than failing, so a digest can be taken before a stage has written its outputs.
    This is the project's one answer to "did these files change" (cache keys, data digests)."""
    h = hashlib.sha256()
    for path in map(Path, paths):
        h.update(f"{path.name}\0".encode())
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    h.update(f"{rel}\0{file_sha256(f)}\n".encode())
        elif path.is_file():
            h.update(file_sha256(path).encode())
        else:
            h.update(b"missing")
    return h.hexdigest()
