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
# # A small experiment through the `har` API
#
# Train a model on a few HAPT subjects with the pipeline's own stage functions (`har.stages`), the
# same ones `har train`, `dvc repro` and the Prefect flow run, and log it to MLflow. Everything this
# notebook writes goes under `work/` in its working directory, including a throwaway MLflow store
# (`work/mlflow.db`): the project's own runs and registry are never touched.
#
# Open the run afterwards with
# `mlflow ui --backend-store-uri sqlite:///$PWD/work/mlflow.db` (from this folder).

# %% tags=["parameters"]
# Parameters (papermill-style; the test suite sets them through the environment).
# HAR_NB_SUBJECTS: comma-separated subject ids; unset = 1-10. HAR_NB_EPOCHS, HAR_NB_MODEL: train.*
import os

SUBJECTS = [int(s) for s in os.environ.get("HAR_NB_SUBJECTS", "1,2,3,4,5,6,7,8,9,10").split(",") if s.strip()]
EPOCHS = int(os.environ.get("HAR_NB_EPOCHS", "10"))
MODEL = os.environ.get("HAR_NB_MODEL", "cnn1d")

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from IPython.display import Image, display
from matplotlib.ticker import MaxNLocator

import har
from har import stages
from har.config import load_params, mirror_dir
from har.data.registry import get_dataset
from har.pipeline import SOURCE_ROOT

WORK = Path("work").resolve()
WORK.mkdir(exist_ok=True)
# MLFLOW_TRACKING_URI would win over tracking.uri (har.tracking): this experiment stays in its own store
os.environ.pop("MLFLOW_TRACKING_URI", None)

base = load_params(SOURCE_ROOT / "params.yaml")
spec = get_dataset(base.data.source)
local = SOURCE_ROOT / base.data.raw_dir / spec.folder
raw_dir = local.parent if local.is_dir() else mirror_dir()  # read the verified copy in place
if raw_dir is None or not (raw_dir / spec.folder).is_dir():
    raise FileNotFoundError(f"no {spec.name} copy: run `har data fetch` or set HAR_DATA_MIRROR")
test = [s for s in base.split.test_subjects if s in SUBJECTS]
# a few subjects: one validation subject per three training subjects, at least one
n_val = max(1, min(base.split.n_val_subjects, (len(SUBJECTS) - len(test)) // 3))

# params.yaml's values, with the subset and every output path moved under WORK
overrides = {
    "data.subjects": SUBJECTS, "data.raw_dir": str(raw_dir),
    "data.interim_path": str(WORK / "data/interim/recordings.parquet"),
    "preprocess.out_dir": str(WORK / "data/processed"),
    "monitor.reference_path": str(WORK / "data/processed/reference_stats.json"),
    "split.test_subjects": test, "split.n_val_subjects": n_val, "split.cv_folds": min(3, len(SUBJECTS)),
    "train.model": MODEL, "train.epochs": EPOCHS, "train.min_epochs": min(EPOCHS, base.train.min_epochs),
    "train.out_dir": str(WORK / "models"), "train.reports_dir": str(WORK / "reports/train"),
    "evaluate.out_dir": str(WORK / "reports/evaluation"),
    "tracking.uri": f"sqlite:///{WORK / 'mlflow.db'}", "tracking.artifact_dir": str(WORK / "mlartifacts"),
}
p = load_params(SOURCE_ROOT / "params.yaml", overrides)
print(f"har from {Path(har.__file__).parent}; subjects {SUBJECTS} (test {test}, {n_val} validation); "
      f"{MODEL} for {EPOCHS} epochs; outputs in {WORK}")

# %% [markdown]
# ## Data: recordings → windows and subject splits
#
# `ingest` reads the raw files into the canonical table, `preprocess` windows it and splits by
# subject (no subject's windows in two splits).

# %%
print(stages.data.ingest(p)["summary"])
prep = stages.data.preprocess(p)
print(prep["summary"])
pd.DataFrame({"windows": prep["windows_per_split"]}).T

# %% [markdown]
# ## Train, then score the test subjects
#
# `train` opens an MLflow run (params, per-epoch curves, the model), `evaluate` adds the test
# metrics and the confusion matrix to the same run.

# %%
trained = stages.model.train(p, show_progress=False)
print(trained["summary"])
evaluated = stages.model.evaluate(p)
print(evaluated["summary"])

# %%
history = pd.read_csv(p.train.reports_dir / "history.csv")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
ax1.plot(history["epoch"], history["train_loss"], marker="o")
ax1.set(xlabel="epoch", ylabel="training loss", title="training loss")
for col in ("val_macro_f1", "val_accuracy"):
    ax2.plot(history["epoch"], history[col], marker="o", label=col)
ax2.axvline(trained["best_epoch"], color="grey", ls="--", label="best epoch (kept)")
ax2.set(xlabel="epoch", ylabel="score", title="validation subjects")
ax2.legend()
for ax in (ax1, ax2):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout()

# %%
display(Image(filename=evaluated["confusion_png"]))
pd.DataFrame(evaluated["per_class"]).T.round(3)

# %% [markdown]
# ## What MLflow holds
#
# The run `train` started, read back through MLflow's own client.

# %%
run = mlflow.MlflowClient(tracking_uri=p.tracking.uri).get_run(trained["run_id"])
print(f"MLflow run {run.info.run_id} in {p.tracking.uri} (experiment {p.tracking.experiment})")
print(json.dumps({k: run.data.params[k] for k in sorted(run.data.params)
                  if k.startswith(("train.model", "train.epochs", "train.lr", "split.test"))}, indent=1))
pd.Series({k: v for k, v in sorted(run.data.metrics.items()) if not k.startswith("test_f1_")}).round(4)
