"""The one place boto3 is configured for S3, and S3 failures turned into one-line errors.

Nothing here knows which server it talks to (MinIO in compose, ``har.stack.s3server`` locally,
AWS in production): boto3 reads the endpoint from the standard ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` variables and credentials from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE``. Addressing is path-style (MinIO and moto need it);
retries are botocore's ``standard`` mode with a bounded number of attempts (``AWS_MAX_ATTEMPTS``,
``AWS_RETRY_MODE`` still win when set) and every request has connect/read timeouts.

Objects written here carry the file's SHA-256 as user metadata (``x-amz-meta-sha256``), checked
again when they are read back.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from har.errors import HarError
from har.io import atomic_path, sha256_file

if TYPE_CHECKING:
    from botocore.client import BaseClient as S3Client
else:  # boto3/botocore are imported lazily: only the S3 code paths pay for them
    S3Client = Any

SHA256_KEY = "sha256"  # user metadata key: sent and stored as x-amz-meta-sha256
DEFAULT_MAX_ATTEMPTS = 3  # total attempts, the first included
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
_CHUNK = 1 << 20

# S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots, hyphens).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Error(HarError):
    """An S3 request failed; the message is one line naming the endpoint, bucket and key.

    ``code`` is the S3 error code (``NoSuchBucket``, ``AccessDenied``…) when the server sent one.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def is_s3_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix")``; S3Error for anything else."""
    if not is_s3_url(url):
        raise S3Error(f"{url!r}: not an S3 URL; expected s3://bucket[/prefix]")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise S3Error(f"{url!r}: invalid bucket name {bucket!r}; expected 3-63 lowercase letters, "
                      "digits, dots or hyphens (s3://bucket[/prefix])")
    prefix = prefix.strip("/")
    if "//" in prefix:
        raise S3Error(f"{url!r}: empty path segment in the prefix")
    return bucket, prefix


def join_key(*parts: str) -> str:
    """Join key segments with '/', ignoring empty ones (an empty prefix means the bucket root)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def s3_client(*, max_attempts: int | None = None, connect_timeout: float = CONNECT_TIMEOUT_S,
              read_timeout: float = READ_TIMEOUT_S) -> S3Client:
    """A boto3 S3 client: endpoint and credentials from the standard AWS environment."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # boto3 is not a core dependency (dev extra; dvc-s3 brings it too)
        raise S3Error("S3 support needs boto3: pip install 'boto3==1.43.117'") from None

    # An explicit Config beats botocore's own environment lookup, so honour the standard
    # retry variables here rather than silently overriding them.
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
    mode = os.environ.get("AWS_RETRY_MODE") or "standard"
    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": mode, "total_max_attempts": max(1, attempts)},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client("s3", config=config)


def endpoint_of(client: S3Client) -> str:
    return str(client.meta.endpoint_url)


def _attempts(client: S3Client) -> int:
    retries = client.meta.config.retries or {}
    return int(retries.get("total_max_attempts") or DEFAULT_MAX_ATTEMPTS)


_CODE_HINTS = {
    "NoSuchBucket": "bucket '{bucket}' does not exist",
    "NoSuchKey": "object does not exist",
    "InvalidAccessKeyId": "the access key id is not known to the server "
                          "(check AWS_ACCESS_KEY_ID / AWS_PROFILE)",
    "SignatureDoesNotMatch": "the secret key does not match the access key id "
                             "(check AWS_SECRET_ACCESS_KEY / AWS_PROFILE)",
    "AccessDenied": "access denied (the credentials lack permission for bucket '{bucket}')",
    "403": "forbidden: unknown access key, wrong secret key or no permission "
           "(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE)",
    "InvalidBucketName": "invalid bucket name",
    "ExpiredToken": "the session token has expired (refresh AWS_SESSION_TOKEN)",
    "InvalidToken": "the session token is invalid (check AWS_SESSION_TOKEN)",
}


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code")
               or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def describe(bucket: str, key: str | None = None) -> str:
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


@contextmanager
def s3_errors(client: S3Client, bucket: str, key: str | None = None) -> Iterator[None]:
    """Turn botocore failures into one S3Error line naming what, where and why."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ResponseStreamingError,
    )

    where = f"{describe(bucket, key)} at {endpoint_of(client)}"

    def from_client_error(err: ClientError) -> S3Error:
        info = err.response.get("Error", {})
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(info.get("Code") or status)
        if code == "404":  # HEAD answers carry no error body, only the status
            code = "NoSuchBucket" if err.operation_name == "HeadBucket" else "NoSuchKey"
        hint = _CODE_HINTS.get(code, "").format(bucket=bucket)
        if not hint:
            message = " ".join(str(info.get("Message") or err).split())
            hint = f"{code}: {message}"
            if status and int(status) >= 500:
                hint += f" (HTTP {status} after {_attempts(client)} attempts)"
        return S3Error(f"{where}: {hint}", code)

    try:
        yield
    except ClientError as err:
        raise from_client_error(err) from None
    except S3UploadFailedError as err:  # boto3's transfer manager wraps the ClientError
        if isinstance(err.__context__, ClientError):
            raise from_client_error(err.__context__) from None
        raise S3Error(f"{where}: {' '.join(str(err).split())}") from None
    except (NoCredentialsError, PartialCredentialsError):
        raise S3Error(f"{where}: no S3 credentials; set AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)") from None
    except ResponseStreamingError as err:  # mid-body: botocore does not retry these
        raise S3Error(f"{where}: connection lost while reading the object "
                      f"({' '.join(str(err).split())})") from None
    except (ConnectionError, HTTPClientError) as err:  # refused, connect/read timeout, closed
        reason = " ".join(str(err).split())
        raise S3Error(f"{where}: cannot reach the S3 endpoint after {_attempts(client)} attempts "
                      f"({reason}); is the server running and AWS_ENDPOINT_URL_S3 right?") from None
    except BotoCoreError as err:
        raise S3Error(f"{where}: {' '.join(str(err).split())}") from None


def ensure_bucket(client: S3Client, bucket: str) -> bool:
    """Create bucket if it does not exist; True when it was created."""
    from botocore.exceptions import ClientError

    with s3_errors(client, bucket):
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as err:
            if _code(err) not in ("404", "NoSuchBucket"):
                raise
        region = client.meta.region_name
        kwargs: dict[str, Any] = {}
        if region and region not in ("us-east-1", "aws-global"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(Bucket=bucket, **kwargs)
        except ClientError as err:  # created concurrently by someone else: fine
            if _code(err) != "BucketAlreadyOwnedByYou":
                raise
    return True


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None  # from x-amz-meta-sha256; None for objects written by other tools


def head_object(client: S3Client, bucket: str, key: str) -> ObjectInfo | None:
    """Size and sha256 metadata of an object, or None when it does not exist."""
    from botocore.exceptions import ClientError

    with s3_errors(client, bucket, key):
        try:
            r = client.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if _code(err) not in ("404", "NoSuchKey"):
                raise
            # a missing bucket also answers 404 to HEAD: say which it was
            client.head_bucket(Bucket=bucket)
            return None
    return ObjectInfo(key, int(r["ContentLength"]), r.get("Metadata", {}).get(SHA256_KEY))


def list_objects(client: S3Client, bucket: str, prefix: str) -> dict[str, int]:
    """Every key under prefix (a folder: '' or ending in '/') with its size."""
    out: dict[str, int] = {}
    with s3_errors(client, bucket, prefix or None):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = int(obj["Size"])
    return out


def upload_file(client: S3Client, path: Path, bucket: str, key: str, sha256: str | None = None,
                callback: Any = None) -> str:
    """Upload path with its sha256 as metadata (computed unless given); returns the sha256."""
    digest = sha256 or sha256_file(path)
    with s3_errors(client, bucket, key):
        client.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {SHA256_KEY: digest}},
                           Callback=callback)
    return digest


def download_file(client: S3Client, bucket: str, key: str, dest: Path,
                  expected_sha256: str | None = None, callback: Any = None) -> str:
    """Download an object to dest (temp file + rename) and return its sha256.

    The content must match the object's sha256 metadata when it has one, and expected_sha256
    when given; a mismatching object is refused before a byte is read when its metadata already
    disagrees, and otherwise never reaches dest.
    """
    where = describe(bucket, key)
    with s3_errors(client, bucket, key):
        r = client.get_object(Bucket=bucket, Key=key)
        body = r["Body"]
        try:
            claimed = r.get("Metadata", {}).get(SHA256_KEY)
            if expected_sha256 and claimed and claimed != expected_sha256:
                raise S3Error(f"{where}: sha256 metadata {claimed} differs from the expected "
                              f"{expected_sha256}; refusing to download it")
            h = hashlib.sha256()
            with atomic_path(dest) as tmp:
                with tmp.open("wb") as f:
                    for chunk in body.iter_chunks(_CHUNK):
                        h.update(chunk)
                        f.write(chunk)
                        if callback is not None:
                            callback(len(chunk))
                actual = h.hexdigest()
                for label, want in (("metadata", claimed), ("expected", expected_sha256)):
                    if want and actual != want:
                        raise S3Error(f"{where}: sha256 mismatch: {label} says {want}, content is "
                                      f"{actual}")
        finally:
            body.close()
    return actual
