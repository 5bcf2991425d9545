"""Property-based fuzzing of the live API with schemathesis (its CLI, against a real server on
127.0.0.1): every operation of /openapi.json, schema-valid and schema-violating data, all checks
but ``positive_data_acceptance`` (the schema cannot say that a window has exactly the served
model's ``window_len`` samples, so most schema-valid bodies are rightly a 422). Bounded:
``MAX_EXAMPLES`` per operation and phase, deterministic generation. Zero failures, and the
server's own /metrics must count no 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving_support import ADMIN_TOKEN

MAX_EXAMPLES = 100


@pytest.mark.parametrize("admin", [True, False], ids=["admin-token", "admin-disabled"])
def test_schemathesis_finds_nothing(live_server, random_onnx: Path, tmp_path: Path, admin: bool) -> None:
    """With the admin routes enabled (and the token sent), and disabled (no token anywhere)."""
    srv = live_server(str(random_onnx), max_windows=64, admin_token=ADMIN_TOKEN if admin else None)
    cli = Path(sys.executable).parent / "schemathesis"
    auth = ["--header", f"Authorization: Bearer {ADMIN_TOKEN}"] if admin else []
    res = subprocess.run(
        [str(cli), "run", f"{srv.url}/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", str(MAX_EXAMPLES),
         "--generation-deterministic", "--request-timeout", "30", "--warnings", "off", *auth,
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=540, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"})
    summary = res.stdout[-3000:]
    assert res.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary, summary
    metrics = httpx.get(f"{srv.url}/metrics").text
    counted = [ln for ln in metrics.splitlines() if ln.startswith("har_http_requests_total{")]
    assert len(counted) > 5 and not [ln for ln in counted if 'status="5' in ln], counted
    answered = sum(float(ln.split()[-1]) for ln in counted)
    assert answered > 7 * MAX_EXAMPLES / 2, answered  # it really ran: hundreds of requests
