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
# # HAPT: what the raw recordings look like
#
# Exploratory look at the HAPT recordings as `har` reads them (`har.data.registry`), windows them
# (`har.preprocess.windows.make_windows`) and splits gravity from body motion
# (`har.preprocess.signal.gravity_body_split`), all with the values in `params.yaml`:
#
# 1. signals per activity,
# 2. how long the postural transitions last,
# 3. class balance per subject (seconds of recording and training windows),
# 4. what the gravity split does (`preprocess.gravity_split`).
#
# The raw files come from the project's verified copy (`har data fetch` → `data/raw/hapt`) or, if
# there is none, from the mirror named by `HAR_DATA_MIRROR`.

# %% tags=["parameters"]
# Parameters (papermill-style; the test suite sets them through the environment).
# HAR_NB_SUBJECTS: comma-separated subject ids, e.g. "1,2,3"; empty or unset = all 30 subjects.
import os

SUBJECTS = [int(s) for s in os.environ.get("HAR_NB_SUBJECTS", "").split(",") if s.strip()] or None

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import har
from har.config import load_params, mirror_dir
from har.data.own import channels_present
from har.data.registry import get_dataset
from har.pipeline import SOURCE_ROOT
from har.preprocess.signal import gravity_body_split
from har.preprocess.windows import make_windows

p = load_params(SOURCE_ROOT / "params.yaml")
spec = get_dataset(p.data.source)
local, mirror = SOURCE_ROOT / p.data.raw_dir / spec.folder, mirror_dir()
raw = local if local.is_dir() else (mirror / spec.folder if mirror else None)
if raw is None or not raw.is_dir():
    raise FileNotFoundError(f"no {spec.name} copy: run `har data fetch` or set HAR_DATA_MIRROR")
print(f"har from {Path(har.__file__).parent}; raw data: {raw}; subjects: {SUBJECTS or 'all'}")

# %%
df = spec.read(raw, subjects=SUBJECTS)
rate = spec.sampling_rate_hz
channels = channels_present(df)
classes = p.preprocess.classes
print(f"{len(df):,} samples ({len(df) / rate / 3600:.1f} h) from {df['subject'].nunique()} subjects, "
      f"{df['session'].nunique()} sessions at {rate:g} Hz; channels {channels}")
print(f"unlabelled samples: {df['label'].isna().mean():.1%}")
df.head()

# %% [markdown]
# ## 1. Signals per activity
#
# The first labelled segment of every class (up to 5 s of it): accelerometer in g, gyroscope in
# rad/s. Static postures differ mostly in where gravity points (the accelerometer's offset);
# walking upstairs and downstairs differ in rhythm and amplitude.

# %%
# labelled segments: runs of one label within a session
label, session = df["label"].astype(object).fillna(""), df["session"].astype(object)
seg_id = np.cumsum(((label != label.shift()) | (session != session.shift())).to_numpy(bool))
segments = (df[df["label"].notna()].groupby(seg_id[df["label"].notna().to_numpy(bool)])
            .agg(subject=("subject", "first"), session=("session", "first"), label=("label", "first"),
                 start=("sample", "first"), n=("sample", "size")))
segments["seconds"] = segments["n"] / rate

present = [c for c in classes if c in set(segments["label"])]
fig, axes = plt.subplots(len(present), 2, figsize=(12, 1.6 * len(present)), sharex=True, squeeze=False)
for row, label in zip(axes, present, strict=True):
    first = segments[segments["label"] == label].iloc[0]
    s = df[(df["session"] == first["session"]) & (df["subject"] == first["subject"])]
    s = s[(s["sample"] >= first["start"]) & (s["sample"] < first["start"] + min(first["n"], 5 * rate))]
    t = (s["sample"] - first["start"]) / rate
    for ax, sensor in zip(row, ("acc", "gyro"), strict=True):
        for axis in "xyz":
            if f"{sensor}_{axis}" in channels:
                ax.plot(t, s[f"{sensor}_{axis}"], lw=0.8, label=axis)
        ax.set_ylabel(label, rotation=0, ha="right", fontsize=8) if sensor == "acc" else None
axes[0, 0].set_title("accelerometer (g)")
axes[0, 1].set_title("gyroscope (rad/s)")
axes[0, 1].legend(loc="upper right", ncol=3, fontsize=7)
for ax in axes[-1]:
    ax.set_xlabel("seconds into the segment")
fig.tight_layout()

# %% [markdown]
# ## 2. Transition durations
#
# Postural transitions last a few seconds, against a window of `preprocess.window_s` (dashed): a
# window often sees only part of one, and the majority label policy (`preprocess.min_purity`)
# decides which windows around it keep the transition's label. Few windows survive per transition.

# %%
transitions = [c for c in classes if "_TO_" in c]
dur = segments[segments["label"].isin(transitions)]
print(dur.groupby("label")["seconds"].describe()[["count", "mean", "min", "50%", "max"]].round(2))
fig, ax = plt.subplots(figsize=(8, 3))
ax.boxplot([dur.loc[dur["label"] == c, "seconds"] for c in transitions], tick_labels=transitions,
           orientation="horizontal")
ax.axvline(p.preprocess.window_s, color="tab:red", ls="--", label=f"window {p.preprocess.window_s} s")
ax.set_xlabel("segment duration (s)")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## 3. Class balance per subject
#
# Seconds of labelled recording per subject and class, then the windows `har preprocess` keeps
# (same parameters as the pipeline). Transitions are rare in both, which is why training weights
# classes (`train.class_weighted`) and evaluation reports macro-F1.

# %%
seconds = pd.crosstab(df["subject"], df["label"]).reindex(columns=present, fill_value=0) / rate
pp = p.preprocess
w = make_windows(df, rate, pp.target_rate_hz, pp.window_s, pp.overlap, pp.label_policy, pp.min_purity,
                 classes, channels)
windows = pd.crosstab(pd.Series(w.subject, name="subject"), pd.Series(np.asarray(classes)[w.y], name="class"))
windows = windows.reindex(columns=present, fill_value=0)
print(f"{len(w.y):,} windows of {w.X.shape[1]} samples; per class:")
print(windows.sum().to_string())

fig, axes = plt.subplots(1, 2, figsize=(13, 0.3 * len(seconds) + 2.5))
for ax, table, what in ((axes[0], seconds, "seconds"), (axes[1], windows, "windows")):
    shares = table.div(table.sum(axis=1), axis=0)
    im = ax.imshow(shares.to_numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(present)), present, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(table)), table.index, fontsize=7)
    ax.set_ylabel("subject")
    ax.set_title(f"share of each subject's {what}")
    fig.colorbar(im, ax=ax, fraction=0.04)
fig.tight_layout()

# %% [markdown]
# ## 4. What the gravity split does
#
# `gravity_body_split` low-passes the accelerometer (zero-phase Butterworth at
# `preprocess.gravity_cutoff_hz`) over a whole session: the slow part is gravity (the phone's
# orientation), the rest is body motion. A stand-to-sit transition moves gravity between axes while
# the body component stays near zero; walking is almost all body component.

# %%
pick = segments[segments["label"] == "STAND_TO_SIT"]
pick = pick.iloc[0] if len(pick) else segments.iloc[0]
s = df[(df["session"] == pick["session"]) & (df["subject"] == pick["subject"])].sort_values("sample")
acc = s[["acc_x", "acc_y", "acc_z"]].to_numpy(np.float64)
gravity, body = gravity_body_split(acc, rate, pp.gravity_cutoff_hz)
lo = max(0, int(pick["start"]) - int(3 * rate))
hi = min(len(s), int(pick["start"] + pick["n"]) + int(3 * rate))
t = np.arange(lo, hi) / rate
fig, axes = plt.subplots(3, 1, figsize=(11, 6), sharex=True)
for ax, values, name in zip(axes, (acc, gravity, body), ("accelerometer", "gravity", "body"),
                            strict=True):
    for i, axis in enumerate("xyz"):
        ax.plot(t, values[lo:hi, i], lw=0.9, label=axis)
    ax.axvspan(pick["start"] / rate, (pick["start"] + pick["n"]) / rate, color="grey", alpha=0.15)
    ax.set_ylabel(f"{name} (g)")
axes[0].set_title(f"{pick['label']} (shaded), subject {pick['subject']}, session {pick['session']}, "
                  f"cutoff {pp.gravity_cutoff_hz} Hz")
axes[0].legend(ncol=3, loc="upper right")
axes[-1].set_xlabel("seconds into the session")
fig.tight_layout()

# %% [markdown]
# With `preprocess.gravity_split: true` the windows carry six more channels, `body_acc_*` then
# `grav_acc_*`, computed per session before windowing (never per window):

# %%
split = make_windows(df[df["session"] == pick["session"]], rate, pp.target_rate_hz, pp.window_s,
                     pp.overlap, pp.label_policy, pp.min_purity, classes, channels, gravity_split=True,
                     gravity_cutoff_hz=pp.gravity_cutoff_hz)
print(split.X.shape, split.channels)
print("per-channel std over the session's windows:")
print(pd.Series(split.X.reshape(-1, split.X.shape[2]).std(axis=0), index=split.channels).round(3).to_string())
