"""Archive storage for documents, proofs and evidence: content-addressed blobs behind one interface.

Two backends implement ``BlobStore``: ``FileSystemStore`` (the embedded default, under
``LRE_DATA_DIR/archive``) and ``S3Store`` (any S3-compatible object store: AWS, OVHcloud,
Scaleway, Cloudflare R2, MinIO, Ceph), chosen by ``LRE_STORAGE_URL``. Keys are ``sha256:<hex>``
of the bytes, so an object is written once and every read can prove it is still those bytes:
``get`` and ``open`` raise ``BlobCorrupted`` rather than hand out changed bytes. Blobs are
written before the database row that references them, so a crash leaves at worst an orphan blob,
never a row pointing at nothing.

On S3 with Object Lock, each object is written with a retention date (``retain_until``, else
``LRE_STORAGE_LOCK_DAYS`` from now) that the storage itself enforces: ``delete`` before that date
raises ``RetentionLocked``, whoever asks. A letter's documents and proofs are written with the
account's retention counted from the letter's creation (``retention.write_lock_until``), and raised
to the letter's exact retention end when it ends (the ``lock_retention`` job,
``connector.archive.jobs``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

# Archive writes are durable writes, which wait on the disk and not on the CPU (nor the GIL): the
# send path starts them here and builds the letter's rows meanwhile. A few threads are enough;
# the writes of a process are not expected to outpace its renders.
_WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lre-archive")
# Streams are copied in pieces of this size: memory per transfer stays bounded whatever the size
# (small, because several transfers run at once in one process).
CHUNK_BYTES = 256 * 1024
# S3 multipart parts (at least 5 MB by the protocol); boto3 holds at most max_concurrency of them.
S3_PART_BYTES = 8 * 1024 * 1024


def _new_writers_after_fork() -> None:
    # A forked child (gunicorn's worker) inherits the pool's bookkeeping but none of its threads:
    # had the parent used it, the child could wait forever on a write no thread will run.
    global _WRITERS
    _WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lre-archive")


os.register_at_fork(after_in_child=_new_writers_after_fork)


def submit_write(function: Callable[..., str], *args: Any) -> Future[str]:
    """Run an archive write (e.g. ``put_stream``) on a writer thread."""
    return _WRITERS.submit(function, *args)


class BlobCorrupted(Exception):
    """The stored bytes no longer have the SHA-256 their key names (changed or truncated)."""

    def __init__(self, key: str, actual: str) -> None:
        super().__init__(f"archive object {key} is damaged: its bytes now hash to sha256:{actual}")
        self.key = key
        self.actual = actual


class RetentionLocked(Exception):
    """The storage refuses to delete an object whose retention date has not passed."""

    def __init__(self, key: str, until: datetime | None) -> None:
        when = until.isoformat() if until else "its retention date"
        super().__init__(f"archive object {key} is locked by the storage until {when}")
        self.key = key
        self.until = until


class BlobStore(Protocol):
    def key_for(self, content: bytes) -> str:
        """The key ``put`` gives ``content`` (keys are derived from the bytes alone)."""
        ...

    def put(self, content: bytes, *, retain_until: datetime | None = None) -> str:
        """Store ``content``; return its key (stable for the same bytes)."""
        ...

    def put_in_background(self, content: bytes, *, retain_until: datetime | None = None) -> Future[str]:
        """Start storing ``content`` on a writer thread; the future gives its key once it is durable.

        A caller must wait for the future before it commits a row that references the key.
        """
        ...

    def put_stream(self, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> str:
        """Store everything ``fileobj`` reads, in bounded memory; return its key."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; KeyError if absent, BlobCorrupted if changed."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A reader over the stored bytes (bounded memory); KeyError if absent.

        Reading it to the end raises BlobCorrupted if the bytes are not the ones the key names.
        """
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob (retention over); absent keys are ignored. RetentionLocked if the
        storage still holds it under lock."""
        ...

    def retain(self, key: str, until: datetime) -> None:
        """Keep the blob at least until ``until`` (a storage lock is extended, never shortened)."""
        ...

    def retained_until(self, key: str) -> datetime | None:
        """The storage's own lock date for the blob, None when the storage has none."""
        ...

    def describe(self) -> str:
        """Where the archive is, for messages (no credentials)."""
        ...

    @property
    def enforces_retention(self) -> bool:
        """Whether the storage itself holds objects until their retention date (``retain`` does
        something): callers skip computing retention dates for a store that would ignore them."""
        ...


def key_for(content: bytes) -> str:
    """``sha256:<hex>`` of ``content``: the key of a blob in every backend."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def digest_of(key: str) -> str:
    """The hex SHA-256 a key names; KeyError for anything that is not a key."""
    if len(key) != 71 or not key.startswith("sha256:") or any(c not in "0123456789abcdef" for c in key[7:]):
        raise KeyError(key)
    return key[7:]


class VerifyingReader(io.RawIOBase):
    """Reads ``raw`` through, hashing as it goes; at the end, raises BlobCorrupted on a mismatch.

    The check comes at the end because a stream cannot know its hash sooner: a caller that streams
    a document out must treat an exception at the end as "what you sent was not the archive's".
    """

    def __init__(self, raw: IO[bytes] | Any, key: str, on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._key = key
        self._expected = digest_of(key)
        self._hash = hashlib.sha256()
        self._checked = False
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            self._finish()
            return 0
        view[: len(data)] = data
        self._hash.update(data)
        return len(data)

    def _finish(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._hash.hexdigest()
        if actual != self._expected:
            raise BlobCorrupted(self._key, actual)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                if self._on_close:
                    self._on_close()
        super().close()


def _check(key: str, content: bytes) -> bytes:
    actual = hashlib.sha256(content).hexdigest()
    if actual != digest_of(key):
        raise BlobCorrupted(key, actual)
    return content


def _spool(fileobj: IO[bytes], directory: Path, *, named: bool = False) -> tuple[str, int, IO[bytes]]:
    """Copy a stream to a temporary file while hashing it: (key, size, file at 0). ``named``: a
    file with a name (removed when closed), for readers that open it by name."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # documents are personal data
    spooled = tempfile.NamedTemporaryFile(dir=directory) if named else tempfile.TemporaryFile(dir=directory)
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := fileobj.read(CHUNK_BYTES):
            digest.update(chunk)
            spooled.write(chunk)
            size += len(chunk)
        spooled.flush()
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return "sha256:" + digest.hexdigest(), size, spooled


class FileSystemStore:
    """Blobs as files named by their SHA-256 under ``root`` (written atomically, read-only).

    A filesystem cannot refuse its administrator: ``retain`` is a no-op here and the bridge's own
    refusal (retention checked before any delete) is the only lock. Use S3 with Object Lock when
    the storage itself must refuse.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        digest = digest_of(key)
        return self.root / digest[:2] / digest[2:4] / digest

    def describe(self) -> str:
        return str(self.root)

    def key_for(self, content: bytes) -> str:
        return key_for(content)

    def put_in_background(self, content: bytes, *, retain_until: datetime | None = None) -> Future[str]:
        key, path, new_dirs = self._prepare(self.key_for(content))
        if path is None:
            done: Future[str] = Future()
            done.set_result(key)
            return done
        return _WRITERS.submit(self._write, key, path, (content,), new_dirs)

    def put(self, content: bytes, *, retain_until: datetime | None = None) -> str:
        key, path, new_dirs = self._prepare(self.key_for(content))
        return key if path is None else self._write(key, path, (content,), new_dirs)

    def put_stream(self, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> str:
        # Spooled beside the archive (same filesystem), then renamed: the key is known only at the end.
        key, _size, spooled = _spool(fileobj, self.root / ".incoming")
        with spooled:
            key, path, new_dirs = self._prepare(key)
            if path is None:
                return key
            self._write(key, path, iter(lambda: spooled.read(CHUNK_BYTES), b""), new_dirs)
        return key

    def _prepare(self, key: str) -> tuple[str, Path | None, tuple[Path, ...]]:
        """The key, the path to write (None when the blob is already stored) and the directories
        whose entries changed and must reach the disk with it (the file's own, and the parents of
        any directory made here)."""
        path = self._path(key)
        if path.exists():
            return key, None, ()
        made = [d for d in (path.parent.parent, path.parent) if not d.exists()]
        for directory in made:
            directory.mkdir(mode=0o700, exist_ok=True)
        return key, path, tuple(dict.fromkeys([*(d.parent for d in made), path.parent]))

    @classmethod
    def _write(cls, key: str, path: Path, chunks: Iterable[bytes], dirs: tuple[Path, ...]) -> str:
        """Write durably under a temporary name, then rename into place (readers never see half a file).

        O_DSYNC makes each write return only once the bytes are on disk: a write and an fsync in one
        system call. On a writer thread that matters, because every system call gives up the GIL
        and taking it back waits for the request thread; a handful of calls keeps that short. The
        directories are synced last: until then, a power cut could lose the file's name (the row
        that the caller commits next would point at nothing).
        """
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        # Owner-only and read-only: archived documents are personal data and never change.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DSYNC | os.O_CLOEXEC, 0o400)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        cls._sync_dirs(dirs)
        return key

    @staticmethod
    def _sync_dirs(dirs: tuple[Path, ...]) -> None:
        for directory in dirs:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return _check(key, path.read_bytes())
        except FileNotFoundError:
            raise KeyError(key) from None

    def open(self, key: str) -> BinaryIO:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        return io.BufferedReader(VerifyingReader(handle, key), CHUNK_BYTES)  # type: ignore[return-value]

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def retain(self, key: str, until: datetime) -> None:
        return None

    def retained_until(self, key: str) -> datetime | None:
        return None

    @property
    def enforces_retention(self) -> bool:
        return False


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
        return _WRITERS.submit(self.put, content, retain_until=retain_until)

    def put_stream(self, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> str:
        from boto3.s3.transfer import TransferConfig

        # The key is the hash of the whole stream, known only at its end: spool to a local temporary
        # file first, then upload it by name. By name, because boto3 then reads each part from the
        # file as it sends it; given a file object, it reads whole parts (8 MB, two at a time) into
        # memory, which four uploads at once multiply.
        key, size, spooled = _spool(fileobj, self.spool_dir, named=True)
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


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; ValueError otherwise."""
    if not url.startswith("s3://"):
        raise ValueError("must be s3://bucket or s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError("must name a bucket: s3://bucket/prefix")
    return bucket, prefix.strip("/")
