"""Recognition quality of every model, the way the field reports it: by subject.

1. The WHAR Arena protocol: 10 subject-group folds on full HAPT (12 classes), 3 s windows, 50 %
   overlap, normalisation fitted on the training folds only; mean ± std macro-F1 per model.
2. The official HAPT split (test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24) with the pipeline's
   own windows (data/processed), one training run per model.

Results go to benchmarks/results/quality.json (one line per finished fold in quality_folds.jsonl,
so an interrupted run resumes); benchmarks/report.py puts them in docs/results.md beside the
published WHAR Arena figures.

    HAR_DATA_MIRROR=../shared/datasets .venv/bin/python benchmarks/quality.py  # after `har run`
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from har.config import load_params
from har.evaluation.cv import cross_validate, summarize
from har.evaluation.metrics import classification_metrics
from har.logging import get_logger, setup_logging
from har.models import model_names
from har.stages.model import cv_windows, model_meta
from har.training.data import load_split_data
from har.training.train import fit_model

RESULTS = Path("benchmarks/results")
log = get_logger("quality")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--models", nargs="+", default=model_names())
    ap.add_argument("--folds", type=int, default=None, help="default: evaluate.cv_folds")
    ap.add_argument("--epochs", type=int, default=None, help="CV epochs (default: evaluate.cv_epochs)")
    ap.add_argument("--epochs-for", nargs="*", default=[], metavar="MODEL=N",
                    help="per-model epochs for both protocols, e.g. deepconvlstm=8 (CPU budget)")
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--skip-cv", action="store_true")
    args = ap.parse_args()
    setup_logging("INFO")
    p = load_params(args.params)
    torch.set_num_threads(p.train.num_threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    per_model_epochs = {k: int(v) for k, v in (s.split("=") for s in args.epochs_for)}
    folds_path = RESULTS / "quality_folds.jsonl"
    official_path = RESULTS / "quality_official.json"

    official = json.loads(official_path.read_text()) if official_path.is_file() else {}
    if not args.skip_official:
        data = load_split_data(p.preprocess.out_dir, p.preprocess.classes)
        X_tr, y_tr = data.part("train")
        X_val, y_val = data.part("val")
        X_te, y_te = data.part("test")
        for name in args.models:
            if name in official:
                continue
            meta = model_meta(p, data, name)
            model, rep = fit_model(p.train, meta, X_tr, y_tr, X_val, y_val, show_progress=False,
                                   epochs=per_model_epochs.get(name))
            m = classification_metrics(y_te, model.predict_proba(X_te).argmax(1), p.preprocess.classes)
            official[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "n_params": meta.n_params,
                              "train_seconds": rep.train_seconds, "epochs_run": rep.epochs_run,
                              "val_macro_f1": rep.val_macro_f1}
            log.info("official split %s: macro-F1 %.4f acc %.4f (%.0f s)", name, m["macro_f1"], m["accuracy"],
                     rep.train_seconds)
            official_path.write_text(json.dumps(official, indent=2))

    rows = [json.loads(line) for line in folds_path.read_text().splitlines()] if folds_path.is_file() else []
    if not args.skip_cv:
        ev, pp = p.evaluate, p.preprocess
        w = cv_windows(p)
        log.info("CV windows: %s (%.1f s, %.0f %% overlap)", w.X.shape, ev.cv_window_s, 100 * ev.cv_overlap)
        done = {(r["model"], r["fold"]) for r in rows}
        for name in args.models:  # model by model, so the cheap ones finish first
            epochs = per_model_epochs.get(name, args.epochs or ev.cv_epochs)
            def record(row: dict) -> None:
                rows.append(row)
                with folds_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                log.info("CV %s fold %d: macro-F1 %.4f (%.0f s)", row["model"], row["fold"], row["macro_f1"],
                         row["train_seconds"])

            cross_validate(w, pp.classes, [name], p.train, folds=args.folds or ev.cv_folds,
                           n_val=p.split.n_val_subjects, seed=p.split.seed, window_s=ev.cv_window_s,
                           overlap=ev.cv_overlap, epochs=epochs,
                           on_fold=record, skip=lambda m, k: (m, k) in done)
    results = pd.DataFrame(rows)
    summary = summarize(results) if len(results) else pd.DataFrame()
    cv_epochs = {m: per_model_epochs.get(m, args.epochs or p.evaluate.cv_epochs) for m in args.models}
    out = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
           "cv": summary.to_dict(orient="records"), "official": official, "cv_epochs": cv_epochs,
           "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (RESULTS / "quality.json").write_text(json.dumps(out, indent=2))
    if len(results):
        print(results.pivot(index="fold", columns="model", values="macro_f1").round(3).to_string())
    print(json.dumps(out["cv"], indent=1))
    from report import main as write_report  # benchmarks/report.py: docs/results.md from every result

    write_report()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
