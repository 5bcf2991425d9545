"""Atomic file writes: a stage writes to a temp file beside the target and renames it into place,
so a failing run never leaves a half-written or overwritten good output. Also the one file hasher."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
