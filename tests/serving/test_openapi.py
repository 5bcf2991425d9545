"""docs/openapi.json is the live schema (`har serve --openapi docs/openapi.json` regenerates it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from serving_support import REPO


def test_committed_openapi_equals_the_live_schema(live_server, random_onnx: Path) -> None:
    srv = live_server(str(random_onnx))
    live = httpx.get(f"{srv.url}/openapi.json").json()
    committed = json.loads((REPO / "docs/openapi.json").read_text())
    assert committed == live, "docs/openapi.json is stale: run `har serve --openapi docs/openapi.json`"


def test_cli_writes_the_same_document(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    res = subprocess.run([sys.executable, "-m", "har.cli", "serve", "--params", str(REPO / "params.yaml"),
                          "--openapi", str(out)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.read_text() == (REPO / "docs/openapi.json").read_text()
