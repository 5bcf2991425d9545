"""Known datasets: where they come from and the manifest their files are checked against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from har.errors import DataError

MANIFESTS = Path(__file__).parent / "manifests"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    uci_id: int
    url: str
    folder: str
    sampling_rate_hz: float
    subjects: tuple[int, ...] = ()

    @property
    def manifest(self) -> Path:
        return MANIFESTS / f"{self.name}.sha256"


DATASETS: dict[str, DatasetSpec] = {
    "hapt": DatasetSpec(
        name="hapt",
        uci_id=341,
        url="https://archive.ics.uci.edu/static/public/341/"
        "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip",
        folder="hapt",
        sampling_rate_hz=50.0,
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
