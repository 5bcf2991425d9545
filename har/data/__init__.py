"""Data sourcing (fetch), HAPT ingest and own-recordings import."""

from har.data.fetch import fetch_dataset
from har.data.ingest import read_hapt, read_recordings, write_recordings
from har.data.own import import_recordings
from har.data.registry import DATASETS, DatasetSpec, get_dataset

__all__ = ["DATASETS", "DatasetSpec", "fetch_dataset", "get_dataset", "import_recordings",
           "read_hapt", "read_recordings", "write_recordings"]
