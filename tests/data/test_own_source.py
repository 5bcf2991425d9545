"""`data.source: own`: the spec and its reader, fetch's verified snapshot of data.own_dir, the
params keys, and dvc.yaml's paths following the source (what `har run` and the flow read)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from har.config import dataset_names, load_params
from har.contracts import OWN_SOURCE
from har.data.fetch import fetch_dataset, fetch_own
from har.data.own import read_own
from har.data.registry import DATASETS, get_dataset
from har.errors import ConfigError, DataError
from har.pipeline import SOURCE_ROOT, load_pipeline

REPO = SOURCE_ROOT


def _csv(path: Path, seconds: float = 3.0, rate: float = 25.0, **columns: object) -> Path:
    t = np.arange(0, seconds, 1 / rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"timestamp": t, "acc_x": 1.0, "acc_y": 0.0, "acc_z": 0.05, "label": "sit",
                  **columns}).to_csv(path, index=False)
    return path


def test_own_is_a_registered_source() -> None:
    spec = get_dataset(OWN_SOURCE)
    assert spec.reader is read_own and spec.url is None and spec.sampling_rate_hz is None
    assert spec.subjects == ()  # the data decides
    assert sorted(DATASETS) == dataset_names()  # config knows the names without importing har.data


def test_reader_takes_every_recording_of_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "own"
    _csv(root / "anna" / "walk.csv", subject=1)
    _csv(root / "ben" / "walk.csv", subject=2)
    _csv(root / "loose.csv")  # no subject column: data.default_subject
    (root / "notes.txt").write_text("ignored")
    (root / ".hidden").mkdir()
    _csv(root / ".hidden" / "x.csv")  # hidden: not a recording
    df = read_own(root, rate_hz=50.0, subject=9)
    sessions = df.groupby(["subject", "session"]).size()
    assert sorted(sessions.index) == [(1, "anna/walk"), (2, "ben/walk"), (9, "loose")]
    assert (sessions == 149).all()  # 0 … 2.96 s at 50 Hz (the last sample at 25 Hz is 2.96 s)
    assert read_own(root, [2], rate_hz=50.0)["subject"].unique().tolist() == [2]
    with pytest.raises(DataError, match=r"none of data.subjects \[7\] is in the recordings "
                                        r"\(subjects: \[0, 1, 2\]\)"):
        read_own(root, [7])


def test_a_session_in_two_files_is_refused(tmp_path: Path) -> None:
    _csv(tmp_path / "a.csv", subject=1, session="morning")
    _csv(tmp_path / "b.csv", subject=1, session="morning")
    with pytest.raises(DataError, match=r"b.csv: session 'morning' of subject 1 is also in .*a.csv"):
        read_own(tmp_path)


def test_snapshot_is_verified_kept_and_renewed(tmp_path: Path) -> None:
    own, target = tmp_path / "own", tmp_path / "raw" / "own"
    _csv(own / "s1" / "a.csv")
    pd.read_csv(_csv(tmp_path / "b.csv")).to_parquet(own / "b.parquet")
    (own / "README.md").write_text("not a recording")
    assert fetch_own(own, target) == target
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "b.parquet", "s1/a.csv"]
    assert (target / "s1" / "a.csv").read_bytes() == (own / "s1" / "a.csv").read_bytes()
    before = (target / "s1" / "a.csv").stat().st_mtime_ns
    fetch_own(own, target)  # unchanged: the snapshot stays as it is
    assert (target / "s1" / "a.csv").stat().st_mtime_ns == before
    _csv(own / "s1" / "a.csv", seconds=4.0)  # a recording changed, one removed
    (own / "b.parquet").unlink()
    fetch_own(own, target)
    assert (target / "s1" / "a.csv").read_bytes() == (own / "s1" / "a.csv").read_bytes()
    assert not (target / "b.parquet").exists()


def test_bad_recording_never_reaches_the_snapshot(tmp_path: Path) -> None:
    own, target = tmp_path / "own", tmp_path / "raw" / "own"
    _csv(own / "a.csv")
    fetch_own(own, target)
    good = (target / "a.csv").read_bytes()
    pd.DataFrame({"timestamp": [0.0, 0.1], "acc_x": 1.0, "acc_y": 0.0}).to_csv(own / "b.csv", index=False)
    with pytest.raises(DataError, match=r"b.csv: missing required column\(s\) \['acc_z'\]"):
        fetch_own(own, target)
    assert sorted(p.name for p in target.iterdir()) == ["a.csv"]
    assert (target / "a.csv").read_bytes() == good
    assert [p.name for p in target.parent.iterdir()] == ["own"]  # no temp folder left


def test_empty_or_missing_own_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "README.md").write_text("x")
    with pytest.raises(DataError, match=r"own: no .csv or .parquet files"):
        fetch_own(tmp_path / "own", tmp_path / "raw" / "own")
    with pytest.raises(DataError, match=r"nope: no such folder \(data.own_dir"):
        fetch_own(tmp_path / "nope", tmp_path / "raw" / "own")
    with pytest.raises(DataError, match="'own' has no download"):
        fetch_dataset(OWN_SOURCE, tmp_path / "raw", None)


def _params(tmp_path: Path, **data: object) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": "hapt"}, "data.dataset is now data.source"),
        ({"source": "wisdm"}, "data.source: unknown source 'wisdm'; expected one of hapt, own"),
        ({"acc_unit": "m/s^2"}, "data.acc_unit: Input should be 'g', 'm/s2' or 'mg'"),
        ({"time_unit": "min"}, "data.time_unit: Input should be 's', 'ms', 'us' or 'ns'"),
        ({"plausibility": "off"}, "data.plausibility: Input should be 'error' or 'warn'"),
    ],
)
def test_data_keys_are_checked(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(_params(tmp_path, **data))


def test_dvc_yaml_follows_the_source(tmp_path: Path) -> None:
    """The stages `dvc repro`, `har run` and the flow run read the source's paths from dvc.yaml."""
    p = load_params(_params(tmp_path, source="own", own_dir="/recordings/chest"))
    stages = {s.name: s for s in load_pipeline(p, REPO / "dvc.yaml")}
    assert stages["fetch"].outs == (Path("data/raw/own"),)
    assert Path("/recordings/chest") in stages["fetch"].deps
    assert Path("data/raw/own") in stages["ingest"].deps
    assert stages["fetch"].param_values(p)["data.source"] == "own"
    hapt = {s.name: s for s in load_pipeline(load_params(REPO / "params.yaml"), REPO / "dvc.yaml")}
    assert hapt["fetch"].outs == (Path("data/raw/hapt"),)
    # the default own_dir is in git, so a hapt project has the fetch stage's every dep
    assert (REPO / "data" / "own" / "README.md").is_file()


@pytest.mark.skipif(not os.environ.get("HAR_DATA_MIRROR"), reason="HAR_DATA_MIRROR not set")
def test_hapt_still_reads_through_its_spec() -> None:
    spec = get_dataset("hapt")
    df = spec.read(Path(os.environ["HAR_DATA_MIRROR"]) / "hapt", [1])
    assert df["subject"].unique().tolist() == [1] and spec.sampling_rate_hz == 50.0
