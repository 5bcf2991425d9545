# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Results: our runs and the 10-fold table beside the published figures
#
# Reads what the project measured and plots it against the published macro-F1 figures on HAPT:
#
# * the MLflow training runs (test-subject macro-F1 of each `har train` + `har evaluate`),
# * the subject 10-fold CV table: `reports/cv/cv_summary.csv` from `har evaluate --cv` when it
#   exists, else the committed `benchmarks/results/quality.json` (`benchmarks/quality.py`),
# * the published figures `benchmarks/report.py` prints in docs/results.md (imported, not copied).

# %% tags=["parameters"]
# Parameters (papermill-style; the test suite sets them through the environment).
# HAR_NB_TRACKING_URI: the MLflow store to read; unset = the project's (MLFLOW_TRACKING_URI, else
# params.yaml tracking.uri). HAR_NB_SUBJECTS is not used here: this notebook only reads results.
import os

TRACKING_URI = os.environ.get("HAR_NB_TRACKING_URI")

# %%
import sys

import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from har.config import load_params
from har.pipeline import SOURCE_ROOT
from har.tracking import tracking_uri

os.chdir(SOURCE_ROOT)  # params.yaml's paths and benchmarks/report.py's are relative to the project
sys.path.insert(0, str(SOURCE_ROOT))
from benchmarks.report import PUBLISHED, RESULTS  # the project root is on sys.path now

p = load_params()
uri = TRACKING_URI or tracking_uri(p)
print(f"MLflow store: {uri}; published figures: {PUBLISHED}")

# %% [markdown]
# ## MLflow training runs

# %%
exp = mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name(p.tracking.experiment)
runs = pd.DataFrame()
if exp is not None:
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs([exp.experiment_id], filter_string="tags.stage = 'train'",
                               order_by=["attributes.start_time DESC"])
    if len(found):
        runs = pd.DataFrame({
            "run": found["run_id"].str[:8], "model": found.get("tags.model"),
            "started": found["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "epochs": found.get("params.train.epochs"),
            "val macro-F1": found.get("metrics.final_val_macro_f1"),
            "test macro-F1": found.get("metrics.test_macro_f1"),
            "test accuracy": found.get("metrics.test_accuracy"),
            "test subjects": found.get("tags.test_subjects"),
        })
print(f"{len(runs)} training runs in experiment {p.tracking.experiment!r}")
runs.round(3)

# %% [markdown]
# ## The subject 10-fold table

# %%
cv_csv = p.evaluate.cv_out_dir / "cv_summary.csv"
if cv_csv.is_file():
    cv, source = pd.read_csv(cv_csv), str(cv_csv)
else:
    cv, source = pd.read_json(RESULTS / "quality.json", typ="series")["cv"], str(RESULTS / "quality.json")
    cv = pd.DataFrame(cv)
print(f"CV table from {source}")
cv[["model", "macro_f1_mean", "macro_f1_std", "accuracy_mean", "folds"]].round(3)

# %% [markdown]
# ## Beside the published figures
#
# Left: the 10-fold subject protocol (mean ± std over folds) and the published figures on the same
# protocol. Right: each MLflow run's macro-F1 on its own test subjects, with the published range
# for reference; a run on a few subjects or epochs is not comparable to the protocol figures.

# %%
rows = [(f"{r.model} (this project)", r.macro_f1_mean, r.macro_f1_std, "tab:blue") for r in cv.itertuples()]
rows += [(f"{name} (published)", value, 0.0, "tab:gray") for name, value in PUBLISHED.items()]
rows.sort(key=lambda r: r[1])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3, 2]})
ax1.barh([r[0] for r in rows], [r[1] for r in rows], color=[r[3] for r in rows])
for i, r in enumerate(rows):
    if r[2]:  # the fold spread: only our figures have one
        ax1.errorbar(r[1], i, xerr=r[2], color="black", capsize=3)
    ax1.text(r[1] + r[2] + 0.01, i, f"{r[1]:.3f}", va="center", fontsize=8)
ax1.set(xlim=(0, 1.05), xlabel="macro-F1", title="HAPT, 10-fold subject protocol")
if len(runs):
    shown = runs.dropna(subset=["test macro-F1"]).iloc[::-1]
    ax2.barh(shown["run"] + " " + shown["model"].fillna("?"), shown["test macro-F1"], color="tab:orange",
             height=0.5)
    for i, value in enumerate(shown["test macro-F1"]):
        ax2.text(value + 0.01, i, f"{value:.3f}", va="center", fontsize=8)
ax2.axvspan(min(PUBLISHED.values()), max(PUBLISHED.values()), color="tab:gray", alpha=0.2,
            label="published range")
ax2.set(xlim=(0, 1.05), xlabel="test macro-F1", title="MLflow runs (own test subjects)")
ax2.legend(loc="lower right")
fig.tight_layout()

# %% [markdown]
# Per-fold spread (`reports/cv/cv_folds.csv`, else `benchmarks/results/quality_folds.jsonl`): a fold's
# macro-F1 hinges on its few transition windows.

# %%
folds_csv = p.evaluate.cv_out_dir / "cv_folds.csv"
folds_jsonl = RESULTS / "quality_folds.jsonl"
folds = (pd.read_csv(folds_csv) if folds_csv.is_file()
         else pd.read_json(folds_jsonl, lines=True) if folds_jsonl.is_file() else pd.DataFrame())
if len(folds):
    order = cv["model"].tolist()
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.boxplot([folds.loc[folds["model"] == m, "macro_f1"] for m in order], tick_labels=order,
               orientation="horizontal")
    ax.set(xlabel="macro-F1 per fold", title="fold-to-fold spread")
    fig.tight_layout()
