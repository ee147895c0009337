"""A file store on an S3 bucket (or any S3 API: moto in tests)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from batch_assets.lib.storage.base import FileStore, ObjectInfo, StoreConfigError
from batch_assets.lib.storage.keys import UnsafeKeyError, safe_key, safe_prefix

DEFAULT_ATTEMPTS = 6


def retry_config(attempts: int = DEFAULT_ATTEMPTS) -> Config:
    """Throttling and transient errors are retried by botocore, not by this module: build the client with
    this config (merged with e.g. path-style addressing where needed). ``attempts`` counts the first try;
    botocore's standard mode waits a random share of 1 s, 2 s, 4 s, ... (at most 20 s) between tries."""
    return Config(retries={"total_max_attempts": attempts, "mode": "standard"})


RETRY_CONFIG = retry_config()

_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# Errors that no retry can fix (botocore does not retry them either), and what to do about each.
_NO_BUCKET = (
    "the bucket does not exist: create it, or set BATCH_ASSETS_S3_BUCKET (and _S3_ENDPOINT_URL) to the right one"
)
_DENIED = (
    "access is denied: give these credentials s3:ListBucket on the bucket and s3:GetObject, s3:PutObject "
    "and s3:DeleteObject under the prefix"
)
_BAD_CREDENTIALS = (
    "the credentials are refused: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile or role) "
    "for this endpoint"
)
_PERMANENT = {
    "NoSuchBucket": _NO_BUCKET,
    "InvalidBucketName": _NO_BUCKET,
    "AccessDenied": _DENIED,
    "403": _DENIED,  # HEAD responses carry no error code
    "AllAccessDisabled": _DENIED,
    "AccountProblem": _DENIED,
    "InvalidAccessKeyId": _BAD_CREDENTIALS,
    "SignatureDoesNotMatch": _BAD_CREDENTIALS,
}


class S3Store(FileStore):
    """Objects in ``bucket`` under ``prefix``; keys are given and returned relative to the prefix.

    ``client`` is a boto3 S3 client made by the caller (endpoint, credentials, addressing style).
    Build it with ``config=RETRY_CONFIG`` or ``retry_config(attempts)`` (botocore's standard retry mode):
    retries of transient errors belong to botocore, this class has no retry loop of its own.
    """

    def __init__(self, client: BaseClient, bucket: str, prefix: str = "") -> None:
        prefix = safe_prefix(prefix)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        options = {"StartAfter": self.prefix + safe_prefix(start_after)} if start_after else {}
        # General purpose buckets list keys in UTF-8 byte order, which is Python's str order.
        with self._explained():
            for page in self._pages(prefix, **options):
                yield from self._objects(page)

    def list_children(self, prefix: str = "") -> tuple[list[str], list[ObjectInfo]]:
        folders: list[str] = []
        files: list[ObjectInfo] = []
        with self._explained():
            for page in self._pages(prefix, Delimiter="/"):
                folders += [p["Prefix"].removeprefix(self.prefix) for p in page.get("CommonPrefixes", [])]
                files += self._objects(page)
        return folders, files

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with self._explained():
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return _info(key, head)

    def download(self, key: str, dest: Path) -> ObjectInfo:
        # One GET: the bytes written and the info returned come from the same version.
        response = self._get(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        body = response["Body"]
        try:
            with dest.open("wb") as target:
                shutil.copyfileobj(body, target, 1 << 20)
        finally:
            body.close()
        return _info(key, response)

    @contextmanager
    def publish(self, key: str) -> Iterator[Path]:
        full = self._full(key)
        with tempfile.TemporaryDirectory(prefix="s3-publish-") as folder:
            # The temp file keeps the key's file name, because some writers pick their format from it.
            temp = Path(folder, PurePosixPath(key).name)
            yield temp
            if not temp.is_file():
                raise FileNotFoundError(f"publish({key!r}): nothing was written to {temp}")
            # One upload_file call: a large file goes up as a multipart upload, which S3 shows only
            # once complete, so readers never see a partial object.
            with self._explained():
                self.client.upload_file(str(temp), self.bucket, full)

    def delete(self, key: str) -> None:
        with self._explained():
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise UnsafeKeyError("refusing to delete the whole store: give a prefix")
        deleted = 0
        batch: list[str] = []
        for info in self.list(prefix):
            batch.append(info.key)
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete_batch(batch)
                batch = []
        if batch:
            deleted += self._delete_batch(batch)
        return deleted

    def read_bytes(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{safe_prefix(key)}"

    def _pages(self, prefix: str, **options: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        return paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + safe_prefix(prefix), **options)

    def _objects(self, page: Mapping[str, Any]) -> Iterator[ObjectInfo]:
        for obj in page.get("Contents", []):
            key = obj["Key"].removeprefix(self.prefix)
            if key.endswith("/"):
                continue  # an empty "folder" made by a console, not a file
            yield ObjectInfo(
                key, obj["Size"], _version(obj["ETag"], obj["LastModified"]), obj["LastModified"].astimezone(UTC)
            )

    def _full(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def _get(self, key: str) -> dict[str, Any]:
        try:
            with self._explained():
                return self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if _is_not_found(error):
                raise FileNotFoundError(f"{self.uri(key)} does not exist") from error
            raise

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """Turn an error no retry can fix into a StoreConfigError that says what to fix."""
        try:
            yield
        except (ClientError, S3UploadFailedError) as error:
            # upload_file wraps the ClientError into an S3UploadFailedError, keeping it as the context.
            cause = error if isinstance(error, ClientError) else error.__context__
            code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
            if code not in _PERMANENT:
                raise
            where = f"s3://{self.bucket}/{self.prefix} at {self.client.meta.endpoint_url}"
            raise StoreConfigError(f"{where}: {code}: {_PERMANENT[code]}") from error

    def _delete_batch(self, keys: list[str]) -> int:
        with self._explained():
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self.prefix + key} for key in keys], "Quiet": True},
            )
        if errors := response.get("Errors"):
            raise OSError(f"could not delete {len(errors)} objects from s3://{self.bucket}, e.g. {errors[0]}")
        return len(keys)


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _NOT_FOUND


def _version(etag: str, modified: datetime) -> str:
    """ETag and upload second: re-uploading the same bytes (or a re-drive) is a new version to
    process, as a rewrite is for a local file."""
    return f"{etag.strip(chr(34))}@{int(modified.timestamp())}"


def _info(key: str, response: Mapping[str, Any]) -> ObjectInfo:
    """Info from a HEAD or GET response."""
    return ObjectInfo(
        key=key,
        size=response["ContentLength"],
        version=_version(response["ETag"], response["LastModified"]),
        modified=response["LastModified"].astimezone(UTC),
    )
