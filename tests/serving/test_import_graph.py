"""The API process keeps heavy libraries out of its import graph (docs/serving.md#tail-latency):
every module alive at startup is a long-lived object the garbage collector would walk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from serving_support import REPO

HEAVY = ["pandas", "scipy", "mlflow", "matplotlib", "pyarrow", "torch", "sklearn", "great_expectations",
         "prefect"]
SCRIPT = """
import json, sys
import har.cli                              # what `har serve` imports first
from har.serving.app import create_app
from har.serving.model import load_model
create_app(inference_log=False)
load_model(sys.argv[1])                     # a file model: no registry client needed
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def test_serving_imports_no_heavy_library(random_onnx: Path) -> None:
    res = subprocess.run([sys.executable, "-c", SCRIPT.format(heavy=HEAVY), str(random_onnx)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == []
