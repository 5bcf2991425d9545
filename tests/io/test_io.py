"""har/io.py: atomic writes (the guarantee the fault drills in tests/integration rely on) and the
one content digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from har.io import atomic_path, content_digest, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.json"
    write_json(target, {"v": 1})
    inode = target.stat().st_ino
    with pytest.raises(RuntimeError, match="midway"), atomic_path(target, ".json") as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("midway")
    assert json.loads(target.read_text()) == {"v": 1} and target.stat().st_ino == inode
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_content_digest_follows_contents_and_names_not_hidden_files(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    base = content_digest([folder, tmp_path / "missing"])
    (folder / ".hidden").write_text("ignored")
    assert content_digest([folder, tmp_path / "missing"]) == base
    (folder / "a.txt").write_text("y")
    changed = content_digest([folder, tmp_path / "missing"])
    assert changed != base
    (folder / "a.txt").rename(folder / "b.txt")
    renamed = content_digest([folder, tmp_path / "missing"])
    assert renamed != changed  # a rename is a change
    (tmp_path / "missing").write_text("")
    assert content_digest([folder, tmp_path / "missing"]) != renamed  # missing ≠ empty
