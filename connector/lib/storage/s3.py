"""``S3Store``: blobs as objects in an S3-compatible bucket, held by Object Lock."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO

from connector.lib.storage.base import (
    CHUNK_BYTES,
    S3_PART_BYTES,
    RetentionLocked,
    VerifyingReader,
    digest_of,
    key_for,
    spool,
    submit_write,
)

LOCK_MODES = ("compliance", "governance", "off")


class S3Store:
    """Blobs as objects ``<prefix>sha256/ab/cd/<hex>`` in an S3-compatible bucket (boto3).

    With ``lock_mode`` compliance or governance the bucket must have Object Lock enabled (which
    implies versioning); each object version is written with that mode and a retention date.
    Compliance: nobody, not even the account's root user, can delete it or shorten the date;
    governance: only a user granted ``s3:BypassGovernanceRetention`` can.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client_factory: Callable[[], Any],
        *,
        lock_mode: str = "compliance",
        default_lock_days: int = 3650,
        spool_dir: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if lock_mode not in LOCK_MODES:
            raise ValueError(f"lock mode must be one of {', '.join(LOCK_MODES)}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.lock_mode = lock_mode
        self.default_lock_days = default_lock_days
        self.spool_dir = spool_dir
        self._clock = clock
        self._client_factory = client_factory
        self._client: Any = None
        self._client_pid = 0

    @property
    def client(self) -> Any:
        # boto3 clients are thread-safe but their connection pool does not survive a fork.
        if self._client is None or self._client_pid != os.getpid():
            self._client = self._client_factory()
            self._client_pid = os.getpid()
        return self._client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def enforces_retention(self) -> bool:
        return self.lock_mode != "off"

    def object_name(self, key: str) -> str:
        digest = digest_of(key)
        return f"{self.prefix}sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def key_for(self, content: bytes) -> str:
        return key_for(content)

    def _lock_args(self, retain_until: datetime | None) -> dict[str, Any]:
        if self.lock_mode == "off":
            return {}
        until = retain_until or (self._clock() + timedelta(days=self.default_lock_days))
        return {"ObjectLockMode": self.lock_mode.upper(), "ObjectLockRetainUntilDate": _aware(until)}

    def put(self, content: bytes, *, retain_until: datetime | None = None) -> str:
        key = self.key_for(content)
        if self._head(key) is not None:
            if retain_until is not None:
                self.retain(key, retain_until)
            return key
        digest = hashlib.sha256(content).digest()
        # ChecksumSHA256: the store refuses the upload if a byte changed on the way.
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_name(key), Body=content,
            ChecksumAlgorithm="SHA256", ChecksumSHA256=base64.b64encode(digest).decode(),
            ContentType="application/octet-stream",
            **self._lock_args(retain_until),
        )
        return key

    def put_in_background(self, content: bytes, *, retain_until: datetime | None = None) -> Future[str]:
        return submit_write(self.put, content, retain_until=retain_until)

    def put_stream(self, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> str:
        from boto3.s3.transfer import TransferConfig

        # The key is the hash of the whole stream, known only at its end: spool to a local temporary
        # file first, then upload it by name. By name, because boto3 then reads each part from the
        # file as it sends it; given a file object, it reads whole parts (8 MB, two at a time) into
        # memory, which four uploads at once multiply.
        key, size, spooled = spool(fileobj, self.spool_dir, named=True)
        with spooled:
            if self._head(key) is not None:
                if retain_until is not None:
                    self.retain(key, retain_until)
                return key
            extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256", "ContentType": "application/octet-stream",
                                     **self._lock_args(retain_until)}
            config = TransferConfig(multipart_threshold=S3_PART_BYTES, multipart_chunksize=S3_PART_BYTES,
                                    max_concurrency=2, use_threads=True)
            self.client.upload_file(spooled.name, self.bucket, self.object_name(key), ExtraArgs=extra, Config=config)
        head = self._head(key)
        if head is None or int(head.get("ContentLength", -1)) != size:
            raise OSError(f"the upload of {key} to {self.describe()} did not arrive whole")
        return key

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.object_name(key)))
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"]
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise
        return io.BufferedReader(VerifyingReader(body, key), CHUNK_BYTES)  # type: ignore[return-value]

    def get(self, key: str) -> bytes:
        with self.open(key) as reader:
            return reader.read()

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _versions(self, key: str) -> list[dict[str, Any]]:
        name = self.object_name(key)
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=name)
        found = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        return [v for v in found if v.get("Key") == name]

    def delete(self, key: str) -> None:
        """Destroy every version of the object that the storage lets go.

        A version still under lock stays (the storage refuses, whoever asks): it is hidden behind a
        delete marker, so that the bridge no longer serves it, and RetentionLocked is raised. The
        bytes remain recoverable (remove the marker) until the lock ends.
        """
        from botocore.exceptions import ClientError

        name = self.object_name(key)
        locked = False
        for version in self._versions(key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=name, VersionId=version["VersionId"])
            except ClientError as exc:
                if _error_code(exc) not in ("AccessDenied", "InvalidRequest", "403"):
                    raise
                locked = True
        if locked:
            until = self.retained_until(key)
            self.client.delete_object(Bucket=self.bucket, Key=name)
            raise RetentionLocked(key, until)

    def retain(self, key: str, until: datetime) -> None:
        if self.lock_mode == "off":
            return
        name = self.object_name(key)
        until = _aware(until)
        for version in self._versions(key):
            if "Size" not in version:  # a delete marker carries no retention
                continue
            current = self._version_retention(name, version["VersionId"])
            if current is None or current < until:
                self.client.put_object_retention(
                    Bucket=self.bucket, Key=name, VersionId=version["VersionId"],
                    Retention={"Mode": self.lock_mode.upper(), "RetainUntilDate": until},
                )

    def _version_retention(self, name: str, version_id: str) -> datetime | None:
        # HEAD with a version id answers ObjectLockRetainUntilDate on every S3 we target, and needs
        # only s3:GetObject (GetObjectRetention needs its own permission).
        head = self.client.head_object(Bucket=self.bucket, Key=name, VersionId=version_id)
        until = head.get("ObjectLockRetainUntilDate")
        return _aware(until) if isinstance(until, datetime) else None

    def retained_until(self, key: str) -> datetime | None:
        head = self._head(key)
        until = (head or {}).get("ObjectLockRetainUntilDate")
        return _aware(until) if isinstance(until, datetime) else None

    def check(self) -> None:
        """Raise ValueError naming the problem when the bucket cannot take locked objects."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ValueError(f"cannot reach bucket {self.bucket}: {exc}") from exc
        if self.lock_mode == "off":
            return
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            raise ValueError(
                f"bucket {self.bucket} has no Object Lock: create it with Object Lock enabled, "
                "or set LRE_STORAGE_LOCK_MODE=off"
            ) from exc
        if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise ValueError(f"bucket {self.bucket} has Object Lock disabled")


def _error_code(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", ""))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
