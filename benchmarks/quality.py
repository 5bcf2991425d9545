"""Recognition quality of every model, the way the field reports it: by subject.

1. The WHAR Arena protocol: 10 subject-group folds on full HAPT (12 classes), 3 s windows, 50 %
   overlap, normalisation fitted on the training folds only. For each (model, seed, fold): macro-F1
   of the test windows one by one (the published protocol), and of the test recordings decoded in
   context (har/evaluation/context.py: the context HMM the API's timeline uses, persistence plus the
   grammar of postural transitions), with per-class F1. For comparison, a decoder whose transitions
   are counted on the training labels (it learns HAPT's scripted order of activities, which the
   grammar deliberately does not). Seeds vary the training (initialisation, batches, augmentation),
   not the folds.
2. Ensembles (``--ensembles classic+sepcnn``): the mean of the members' test probabilities, per
   seed, scored the same way.
3. The cost of each model: parameters, multiply-adds per window (torch's flop counter), ONNX bytes.
4. The official HAPT split (test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24) with the pipeline's own
   windows (data/processed), one training run per model.

Rows go to benchmarks/results/quality_folds.jsonl (one line per finished fold, so an interrupted
run resumes), test probabilities to benchmarks/results/cv_probs/ (not in git), the summary to
quality.json; benchmarks/report.py puts them in docs/results.md beside the published figures.

    HAR_DATA_MIRROR=../shared/datasets .venv/bin/python benchmarks/quality.py  # after `har run`
    .venv/bin/python benchmarks/quality.py --models sepcnn --seeds 42 43 44 --skip-official
    .venv/bin/python benchmarks/quality.py --models sepcnn --set train.mixup_alpha=0.2 --tag "mixup 0.2"
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from har.config import Params, load_params, with_overrides
from har.evaluation.context import (
    context_predictions,
    count_transitions,
    decode_selected,
    recording_sequences,
)
from har.evaluation.cv import FoldSplit, fit_fold, fold_masks, fold_splits, score_fold
from har.evaluation.metrics import classification_metrics
from har.logging import get_logger, setup_logging
from har.models import get_model, model_names
from har.preprocess.windows import Windows
from har.stages.model import cv_context, cv_windows, model_meta
from har.training.data import load_split_data
from har.training.train import fit_model

RESULTS = Path("benchmarks/results")
PROBS = RESULTS / "cv_probs"
log = get_logger("quality")


def _probs_path(model: str, seed: int, fold: int) -> Path:
    safe = re.sub(r"[^\w.+-]+", "_", model)  # a variant's tag may hold spaces or slashes
    return PROBS / f"{safe}-s{seed}-f{fold}.npy"


def _learned_context(w: Windows, split: FoldSplit, probs: np.ndarray, n_classes: int,
                     classes: list[str]) -> float:
    """Macro-F1 with transitions counted on the fold's training and validation labels."""
    m = fold_masks(w, split)
    counted = count_transitions(w.y, recording_sequences(w, m["train"] | m["val"]), n_classes)
    pred = decode_selected(probs, w, m["test"], counted)
    return float(classification_metrics(w.y[m["test"]], pred, classes)["macro_f1"])


def _row(p: Params, w: Windows, model: str, seed: int, split: FoldSplit, probs: np.ndarray,
         extra: dict[str, Any]) -> dict[str, Any]:
    classes = p.preprocess.classes
    scores = score_fold(w, classes, split, probs, cv_context(p))
    return {"model": model, "seed": seed, "fold": split.fold, "test_subjects": " ".join(map(str, split.test)),
            **scores, "macro_f1_learned": _learned_context(w, split, probs, len(classes), classes), **extra}


def row_name(model: str, tag: str | None) -> str:
    """A variant's rows are a model of their own in the table: ``sepcnn (mixup 0.2)``."""
    return f"{model} ({tag})" if tag else model


def run_cv(p: Params, w: Windows, models: list[str], seeds: list[int], epochs_for: dict[str, int],
           rows: list[dict[str, Any]], record: Any, folds: int, tag: str | None = None,
           only_folds: list[int] | None = None) -> None:
    ev = p.evaluate
    # rows from before context scoring are run again (a newer row for the same key replaces them)
    done = {(r["model"], r.get("seed", p.train.seed), r["fold"]) for r in rows if "macro_f1_context" in r}
    splits = fold_splits(sorted(set(w.subject.tolist())), folds, p.split.n_val_subjects, p.split.seed)
    for name in models:  # model by model, so the cheap ones finish first
        epochs = epochs_for.get(name, ev.cv_epochs)
        for seed in seeds:
            tp = with_overrides(p, {"train.seed": seed}).train
            for split in splits:
                skipped = only_folds is not None and split.fold not in only_folds
                if skipped or (row_name(name, tag), seed, split.fold) in done:
                    continue
                trained, rep = fit_fold(w, p.preprocess.classes, name, tp, split, window_s=ev.cv_window_s,
                                        overlap=ev.cv_overlap, epochs=epochs)
                probs = trained.predict_proba(w.X[fold_masks(w, split)["test"]])
                PROBS.mkdir(parents=True, exist_ok=True)
                np.save(_probs_path(row_name(name, tag), seed, split.fold), probs.astype(np.float32))
                record(_row(p, w, row_name(name, tag), seed, split, probs, {
                    "n_params": trained.meta.n_params, "train_seconds": rep.train_seconds,
                    "epochs_run": rep.epochs_run, "best_epoch": rep.best_epoch, "epochs": epochs}))


def run_ensembles(p: Params, w: Windows, ensembles: list[str], rows: list[dict[str, Any]], record: Any,
                  folds: int) -> None:
    """Mean probabilities of the members, per seed of the last member (the others at their seed if
    they have it, else at train.seed), for every fold all members finished."""
    done = {(r["model"], r.get("seed"), r["fold"]) for r in rows}
    splits = fold_splits(sorted(set(w.subject.tolist())), folds, p.split.n_val_subjects, p.split.seed)
    for spec in ensembles:
        members = spec.split("+")
        seeds = sorted({r.get("seed", p.train.seed) for r in rows if r["model"] == members[-1]})
        for seed in seeds:
            for split in splits:
                paths = [_probs_path(m, seed, split.fold) if _probs_path(m, seed, split.fold).is_file()
                         else _probs_path(m, p.train.seed, split.fold) for m in members]
                if (spec, seed, split.fold) in done or not all(path.is_file() for path in paths):
                    continue
                probs = np.mean([np.load(path) for path in paths], axis=0)
                record(_row(p, w, spec, seed, split, probs, {"members": members}))


def summarize_seeds(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model: macro-F1 mean over seeds and folds, std over folds (of the seed means) and std of
    the per-seed means; the same with context; parameters, CPU seconds per fold, per-class F1."""
    out = []
    for model, g in rows.groupby("model"):
        rec: dict[str, Any] = {"model": model, "seeds": sorted({int(s) for s in g["seed"]}),
                               "folds": int(g["fold"].nunique())}
        for col in ("macro_f1", "macro_f1_context", "macro_f1_learned", "accuracy"):
            if col not in g or g[col].isna().all():
                continue
            per_fold = g.groupby("fold")[col].mean()
            per_seed = g.groupby("seed")[col].mean()
            rec |= {f"{col}_mean": float(per_fold.mean()), f"{col}_std": float(per_fold.std(ddof=1)),
                    f"{col}_seed_std": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0}
        for col in ("per_class_f1", "per_class_f1_context"):
            if col in g and g[col].notna().all():
                rec[col] = pd.DataFrame(list(g[col])).mean().to_dict()
        if "n_params" in g and g["n_params"].notna().any():
            rec["n_params"] = int(g["n_params"].dropna().iloc[0])
            rec["train_seconds_per_fold"] = float(g["train_seconds"].mean())
        out.append(rec)
    return sorted(out, key=lambda r: -r.get("macro_f1_context_mean", r["macro_f1_mean"]))


def model_costs(p: Params, models: list[str], w: Windows) -> dict[str, dict[str, Any]]:
    """Parameters, multiply-adds per 3 s window and ONNX bytes of each model at its params.yaml size.
    Weights do not change a network's cost, so deep models are exported untrained; the boosted
    trees' size depends on the data, so ``classic`` is fitted on the windows first."""
    from har.export.cost import model_cost
    from har.export.onnx import export_onnx
    from har.models import build_model
    from har.training.bundle import ModelMeta, TrainedModel

    out = {}
    for name in models:
        meta = ModelMeta(model=name, classes=p.preprocess.classes, channels=w.channels, rate_hz=w.rate_hz,
                         window_len=w.X.shape[1], window_s=p.evaluate.cv_window_s,
                         overlap=p.evaluate.cv_overlap)
        if get_model(name).kind == "classic":
            trained, _ = fit_model(p.train, meta, w.X, w.y, w.X[:64], w.y[:64], show_progress=False)
        else:
            trained = TrainedModel(meta, net=build_model(name, p.train, len(w.channels),
                                                         len(p.preprocess.classes)).eval())
        with tempfile.TemporaryDirectory() as d:
            path = export_onnx(trained, Path(d) / "model.onnx", opset=p.export.opset)
            out[name] = model_cost(trained, path)
        log.info("cost %s: %s", name, out[name])
    return out


def run_official(p: Params, models: list[str], epochs_for: dict[str, int], official: dict[str, Any],
                 path: Path) -> None:
    data = load_split_data(p.preprocess.out_dir, p.preprocess.classes)
    X_tr, y_tr = data.part("train")
    X_val, y_val = data.part("val")
    X_te, y_te = data.part("test")
    test = np.isin(data.windows.subject, data.splits["test"])
    for name in models:
        if name in official:
            continue
        meta = model_meta(p, data, name)
        model, rep = fit_model(p.train, meta, X_tr, y_tr, X_val, y_val, show_progress=False,
                               epochs=epochs_for.get(name))
        probs = model.predict_proba(X_te)
        m = classification_metrics(y_te, probs.argmax(1), p.preprocess.classes)
        ctx = context_predictions(probs, data.windows, test, p.preprocess.classes,
                                  p.preprocess.transition_grammar(), p.serve.hmm_switch_prob)
        mc = classification_metrics(y_te, ctx, p.preprocess.classes)
        official[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "n_params": meta.n_params,
                          "macro_f1_context": mc["macro_f1"], "train_seconds": rep.train_seconds,
                          "epochs_run": rep.epochs_run, "val_macro_f1": rep.val_macro_f1}
        log.info("official split %s: macro-F1 %.4f (context %.4f) acc %.4f (%.0f s)", name, m["macro_f1"],
                 mc["macro_f1"], m["accuracy"], rep.train_seconds)
        path.write_text(json.dumps(official, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--models", nargs="+", default=model_names())
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="training seeds (default: train.seed)")
    ap.add_argument("--ensembles", nargs="*", default=["classic+sepcnn"], metavar="A+B",
                    help="mean-probability ensembles of models run with this script")
    ap.add_argument("--folds", type=int, default=None, help="default: evaluate.cv_folds")
    ap.add_argument("--epochs-for", nargs="*", default=[], metavar="MODEL=N",
                    help="per-model epochs for both protocols, e.g. deepconvlstm=8 (CPU budget)")
    ap.add_argument("--threads", type=int, default=None,
                    help="train.num_threads (small models train fastest on one thread per process)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="sets",
                    help="a variant: params overrides (e.g. train.mixup_alpha=0.2), CV only")
    ap.add_argument("--tag", default=None, help="the variant's name in the table (default: the --set text)")
    ap.add_argument("--only-folds", nargs="*", type=int, default=None, metavar="K",
                    help="run these folds (1-based) only: share one protocol between processes")
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--skip-cv", action="store_true")
    args = ap.parse_args()
    setup_logging("INFO")
    from har.cli._common import parse_set

    p = load_params(args.params, {"train.num_threads": args.threads})
    overrides = parse_set(args.sets)
    tag = (args.tag or " ".join(args.sets)) if overrides else None
    if overrides:  # a variant is compared with the params.yaml rows on the same folds
        p = with_overrides(p, overrides, "--set")
        args.skip_official = True
    torch.set_num_threads(p.train.num_threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    epochs_for = {k: int(v) for k, v in (s.split("=") for s in args.epochs_for)}
    seeds = args.seeds or [p.train.seed]
    folds = args.folds or p.evaluate.cv_folds
    folds_path = RESULTS / "quality_folds.jsonl"
    official_path = RESULTS / "quality_official.json"
    official = json.loads(official_path.read_text()) if official_path.is_file() else {}
    if not args.skip_official:
        run_official(p, args.models, epochs_for, official, official_path)

    rows = [json.loads(line) for line in folds_path.read_text().splitlines()] if folds_path.is_file() else []

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        with folds_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("CV %s seed %s fold %d: macro-F1 %.4f, in context %.4f", row["model"], row.get("seed"),
                 row["fold"], row["macro_f1"], row.get("macro_f1_context", float("nan")))

    w = cv_windows(p)
    if not args.skip_cv:
        log.info("CV windows: %s (%.1f s, %.0f %% overlap)", w.X.shape, p.evaluate.cv_window_s,
                 100 * p.evaluate.cv_overlap)
        run_cv(p, w, args.models, seeds, epochs_for, rows, record, folds, tag, args.only_folds)
        run_ensembles(p, w, args.ensembles, rows, record, folds)
    quality_path = RESULTS / "quality.json"
    previous = json.loads(quality_path.read_text()) if quality_path.is_file() else {}
    costs = previous.get("cost", {}) | model_costs(p, [m for m in args.models if m in model_names()], w)
    table = pd.DataFrame(rows)
    if "seed" not in table:
        table["seed"] = p.train.seed
    table["seed"] = table["seed"].fillna(p.train.seed).astype(int)  # rows from before seeds were recorded
    table = table.drop_duplicates(["model", "seed", "fold"], keep="last")  # a re-run replaces its row
    cv_epochs = previous.get("cv_epochs", {}) | {m: epochs_for.get(m, p.evaluate.cv_epochs)
                                                 for m in args.models}
    out = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
           "cv": summarize_seeds(table) if len(table) else [], "official": official, "cv_epochs": cv_epochs,
           "cost": costs, "context": {"switch_prob": p.serve.hmm_switch_prob,
                                      "grammar": p.preprocess.transition_grammar()},
           "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    quality_path.write_text(json.dumps(out, indent=2))
    print(json.dumps([{k: v for k, v in r.items() if not k.startswith("per_class")} for r in out["cv"]],
                     indent=1))
    from report import main as write_report  # benchmarks/report.py: docs/results.md from every result

    write_report()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
