"""Known datasets: where they come from and the manifest their files are checked against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from har.data.ingest import read_hapt
from har.errors import DataError

MANIFESTS = Path(__file__).parent / "manifests"


Reader = Callable[..., pd.DataFrame]  # (raw folder, subjects=None | [ids]) → canonical recordings


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: where it comes from, how it is checked and how its raw files become the
    canonical recordings table (``reader``). A new dataset is one entry here, its reader and its
    sha256 manifest in har/data/manifests/."""

    name: str
    uci_id: int
    url: str
    folder: str
    sampling_rate_hz: float
    reader: Reader
    subjects: tuple[int, ...] = ()

    @property
    def manifest(self) -> Path:
        return MANIFESTS / f"{self.name}.sha256"

    def read(self, root: Path, subjects: list[int] | None = None) -> pd.DataFrame:
        return self.reader(root, subjects=subjects)


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
