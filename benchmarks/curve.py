"""One fold's learning curve of one model: per-epoch training loss and validation macro-F1, then the
test macro-F1, at params.yaml's settings plus ``--set`` overrides. Early stopping is off (every
epoch runs), so a curve shows whether a model is still learning when the quality run stops it.

Evidence for docs/results.md where a model falls short of its published figure (DeepConvLSTM):

    .venv/bin/python benchmarks/curve.py --model deepconvlstm --epochs 30
    .venv/bin/python benchmarks/curve.py --model deepconvlstm --epochs 30 --tag "reference-like" \\
        --set train.lr=0.001 train.deepconvlstm.dropout=0 train.augment.rotation=false

Curves are appended to benchmarks/results/curves.jsonl (one line per run; the report draws them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from har.config import load_params
from har.evaluation.cv import fit_fold, fold_masks, fold_splits, score_fold
from har.logging import setup_logging
from har.stages.model import cv_context, cv_windows

RESULTS = Path("benchmarks/results")


def main() -> None:
    from har.cli._common import parse_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--fold", type=int, default=1, help="1-based fold of the 10-fold protocol")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="sets")
    ap.add_argument("--tag", default=None, help="the curve's name (default: params.yaml or the --set text)")
    args = ap.parse_args()
    setup_logging("INFO")
    overrides = parse_set(args.sets)
    # min_epochs = epochs: the whole curve, no early stop
    p = load_params(args.params, {"train.num_threads": args.threads, "train.min_epochs": args.epochs,
                                  **overrides})
    torch.set_num_threads(p.train.num_threads)
    w = cv_windows(p)
    split = fold_splits(sorted(set(w.subject.tolist())), p.evaluate.cv_folds, p.split.n_val_subjects,
                        p.split.seed)[args.fold - 1]
    start = time.process_time()
    ev = p.evaluate
    trained, rep = fit_fold(w, p.preprocess.classes, args.model, p.train, split,
                            window_s=ev.cv_window_s, overlap=ev.cv_overlap, epochs=args.epochs)
    probs = trained.predict_proba(w.X[fold_masks(w, split)["test"]])
    scores = score_fold(w, p.preprocess.classes, split, probs, cv_context(p))
    row = {"model": args.model, "tag": args.tag or (" ".join(args.sets) or "params.yaml"),
           "overrides": overrides, "fold": args.fold, "epochs": args.epochs,
           "n_params": trained.meta.n_params,
           "cpu_seconds": time.process_time() - start, "test_macro_f1": scores["macro_f1"],
           "test_macro_f1_context": scores.get("macro_f1_context"),
           "history": [{"epoch": h["epoch"], "train_loss": h["train_loss"], "val_macro_f1": h["val_macro_f1"]}
                       for h in rep.history],
           "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "curves.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
