"""The har logger hierarchy is on Prefect's API log handler in every process that runs flows: the
CLI path (flows imported before prefect) and a worker's flow-run process (prefect imported first,
then the flow file loaded as a script). The flow test reads the lines back from a run's logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = """
import json, logging, os, sys
sys.path.insert(0, {repo!r})
if {prefect_first}:
    import prefect  # what `python -m prefect.engine` (a worker's flow-run process) does first
    from prefect.flows import load_flow_from_entrypoint
    load_flow_from_entrypoint("flows/training.py:training_pipeline")
else:
    import flows.training  # what `har pipeline run` does (serve: flows.deploy)
from prefect.logging.handlers import APILogHandler
har = logging.getLogger("har")
print(json.dumps({{"api": sum(isinstance(h, APILogHandler) for h in har.handlers),
                   "info": har.isEnabledFor(logging.INFO),
                   "extra": os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS")}}))
"""


@pytest.mark.parametrize("prefect_first", [False, True], ids=["cli", "worker"])
def test_har_logger_is_attached_to_the_api_handler(tmp_path: Path, prefect_first: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    env.update(PREFECT_HOME=str(tmp_path), PREFECT_LOGGING_EXTRA_LOGGERS="mylib")  # the user's stays
    code = CHECK.format(repo=str(REPO), prefect_first=prefect_first)
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"api": 1, "info": True, "extra": "mylib,har"}
