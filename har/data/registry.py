"""Known datasets: where they come from, the manifest their files are checked against and the
reader that turns them into the canonical recordings table. ``own`` is your own recordings: no
download and no committed manifest; fetch snapshots data.own_dir (har.data.fetch.fetch_own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from har.contracts import OWN_SOURCE
from har.data.ingest import read_hapt
from har.data.own import read_own
from har.errors import DataError

MANIFESTS = Path(__file__).parent / "manifests"


# (raw folder, subjects=None | [ids], **the reader's options) → canonical recordings
Reader = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: where it comes from, how it is checked and how its raw files become the
    canonical recordings table (``reader``). A new dataset is one entry here, its reader and its
    sha256 manifest in har/data/manifests/ (whose file name is how har.config knows the name).

    ``url`` None: the files are the user's (``own``), snapshotted from data.own_dir by fetch.
    ``sampling_rate_hz`` None: any rate, which the reader resamples onto its ``rate_hz`` option.
    ``subjects``: the subjects the dataset defines (validate expects them all), () when the data
    decides."""

    name: str
    uci_id: int | None
    url: str | None
    folder: str
    sampling_rate_hz: float | None
    reader: Reader
    subjects: tuple[int, ...] = ()
    # what a model card repeats about the data (har.registry.card)
    licence: str = "Your own recordings: their licence is yours to state."
    citation: str = "—"

    @property
    def manifest(self) -> Path:
        return MANIFESTS / f"{self.name}.sha256"

    def read(self, root: Path, subjects: list[int] | None = None, **options: Any) -> pd.DataFrame:
        return self.reader(root, subjects=subjects, **options)


DATASETS: dict[str, DatasetSpec] = {
    "hapt": DatasetSpec(
        name="hapt",
        uci_id=341,
        url="https://archive.ics.uci.edu/static/public/341/"
        "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip",
        folder="hapt",
        sampling_rate_hz=50.0,
        reader=read_hapt,
        subjects=tuple(range(1, 31)),
        licence="The dataset's README allows use for research and forbids commercial use; any "
                "publication using it must cite the paper below (UCI Machine Learning Repository, "
                "dataset 341).",
        citation="Reyes-Ortiz, Oneto, Samà, Parra, Anguita: Transition-Aware Human Activity "
                 "Recognition Using Smartphones. Neurocomputing 171, 2016.",
    ),
    OWN_SOURCE: DatasetSpec(
        name=OWN_SOURCE,
        uci_id=None,
        url=None,
        folder=OWN_SOURCE,
        sampling_rate_hz=None,
        reader=read_own,
    ),
}


class UnknownDataset(DataError, ValueError):
    """Raised by get_dataset for a name not in DATASETS (a ValueError and a DataError)."""


def get_dataset(name: str) -> DatasetSpec:
    """The spec for name; UnknownDataset (a ValueError) lists the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
