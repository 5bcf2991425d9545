"""har.s3 pieces that need no server: URL parsing, mirror selection, client configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from har.config import data_mirror, mirror_dir
from har.s3 import S3Error, join_key, s3_client, split_s3_url


@pytest.mark.parametrize(("url", "expected"), [
    ("s3://lake", ("lake", "")),
    ("s3://lake/", ("lake", "")),
    ("s3://lake/raw", ("lake", "raw")),
    ("s3://my.lake-01/raw/v2/", ("my.lake-01", "raw/v2")),
])
def test_split_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert split_s3_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("/data/mirror", r"'/data/mirror': not an S3 URL; expected s3://bucket\[/prefix\]"),
    ("s3:/lake/raw", r"not an S3 URL"),
    ("s3://", r"invalid bucket name ''"),
    ("s3://Lake/raw", r"invalid bucket name 'Lake'"),
    ("s3://la/raw", r"invalid bucket name 'la'"),
    ("s3://lake_1/raw", r"invalid bucket name 'lake_1'"),
    ("s3://lake/raw//hapt", r"empty path segment"),
])
def test_malformed_s3_urls_are_clear(url: str, message: str) -> None:
    with pytest.raises(S3Error, match=message):
        split_s3_url(url)


def test_join_key_skips_empty_prefix() -> None:
    assert join_key("", "hapt", "RawData/labels.txt") == "hapt/RawData/labels.txt"
    assert join_key("raw/", "hapt") == "raw/hapt"


def test_mirror_is_a_folder_or_an_s3_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAR_DATA_MIRROR", "/srv/mirror")
    assert data_mirror() == Path("/srv/mirror") == mirror_dir()
    assert data_mirror("s3://lake/raw") == "s3://lake/raw"  # --mirror wins over the variable
    monkeypatch.setenv("HAR_DATA_MIRROR", "s3://lake/raw")
    assert data_mirror() == "s3://lake/raw" and mirror_dir() is None
    assert data_mirror("s3:/lake") == "s3:/lake"  # a typo goes to split_s3_url, not a folder
    monkeypatch.delenv("HAR_DATA_MIRROR")
    assert data_mirror() is None


def test_client_endpoint_comes_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert s3_client().meta.endpoint_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9100")  # the S3-specific one wins
    client = s3_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:9100"
    assert client.meta.config.s3["addressing_style"] == "path"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    assert s3_client().meta.config.retries["total_max_attempts"] == 5
