"""Continuous recognition on whole recordings: the timeline's sample-level scores on the official
test subjects, with the smoothing chosen on the validation subjects.

Usage: python benchmarks/continuous.py [--project DIR]

DIR is a project after `dvc repro` (default: the working directory): its exported model
(export.path), its recordings (data.interim_path) and its subject splits. Every smoothing candidate
(no smoothing, majority votes, HMMs) is scored on the validation subjects; the best one, and
for reference every other, is then scored once on the test subjects beside the window-level
macro-F1 of `har evaluate` on the same model. Results: benchmarks/results/continuous.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from har.config import load_params
from har.contracts import SPLITS_FILE
from har.data.ingest import read_recordings
from har.evaluation.continuous import choose_smoothing, default_grid, sample_scores
from har.serving.model import load_model

RESULTS = Path(__file__).resolve().parent / "results" / "continuous.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.chdir(args.project)
    p = load_params(Path("params.yaml"))
    model = load_model(str(p.export.path), intra_op_threads=2)
    recordings, meta = read_recordings(p.data.interim_path)
    rate = float(meta["sampling_rate_hz"])
    splits = json.loads((p.preprocess.out_dir / SPLITS_FILE).read_text())
    classes = p.preprocess.classes
    t0 = time.perf_counter()
    best, validation = choose_smoothing(model, recordings, rate, splits["val"], classes)
    print(f"validation subjects {splits['val']}: best {best.label()}", flush=True)
    test = [sample_scores(model, recordings, rate, splits["test"], classes, s) for s in default_grid()]
    chosen = next(r for r in test if r["smoothing"] == best.label())
    window = json.loads((p.evaluate.out_dir / "metrics.json").read_text())
    result = {
        "model": model.spec.model_type, "model_file": str(p.export.path),
        "val_subjects": splits["val"], "test_subjects": splits["test"],
        "window_macro_f1": window["macro_f1"], "window_accuracy": window["accuracy"],
        "chosen": best.label(), "chosen_test": chosen,
        "validation": [{k: r[k] for k in ("smoothing", "macro_f1", "accuracy")} for r in validation],
        "test": [{k: r[k] for k in ("smoothing", "macro_f1", "accuracy")} for r in test],
        "seconds": round(time.perf_counter() - t0, 1), "time": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("window_macro_f1", "chosen")} | {
        "sample_macro_f1": chosen["macro_f1"], "sample_accuracy": chosen["accuracy"]}, indent=2))


if __name__ == "__main__":
    main()
