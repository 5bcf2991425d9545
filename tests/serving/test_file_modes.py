"""Atomic writes (har.io.atomic_path) leave files with the umask's permissions, not mkstemp's 0600:
an API running as another user must be able to read models/model.onnx."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from serving_support import REPO

WRITE = """
import os, sys
from pathlib import Path
os.umask(int(sys.argv[2], 8))
from har.io import atomic_path
path = Path(sys.argv[1])
with atomic_path(path, ".onnx") as tmp:
    tmp.write_bytes(b"model")
print(oct(path.stat().st_mode & 0o777))
"""


@pytest.mark.parametrize(("umask", "mode"), [("022", 0o644), ("002", 0o664), ("077", 0o600)])
def test_atomic_path_mode_follows_umask(tmp_path: Path, umask: str, mode: int) -> None:
    target = tmp_path / "models" / "model.onnx"
    res = subprocess.run([sys.executable, "-c", WRITE, str(target), umask], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert target.stat().st_mode & 0o777 == mode
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_can_read_the_exported_model() -> None:
    """Written by this user with umask 022, read by `nobody` (another user, as the API's container
    user is). In a folder of its own under /tmp: pytest's tmp_path sits in a 0700 folder."""
    folder = Path(tempfile.mkdtemp(prefix="har-modes-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        _write_and_read_as_nobody(folder / "model.onnx")
    finally:
        shutil.rmtree(folder)


def _write_and_read_as_nobody(target: Path) -> None:
    res = subprocess.run([sys.executable, "-c", WRITE, str(target), "022"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert res.returncode == 0, res.stderr
    nobody = pwd.getpwnam("nobody")

    def as_nobody() -> None:
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    read = subprocess.run(["cat", str(target)], capture_output=True, preexec_fn=as_nobody, timeout=30)
    assert read.returncode == 0 and read.stdout == b"model", read.stderr
