"""What every archive backend shares: the ``BlobStore`` interface, content keys, verified reads,
the writer threads and the errors."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
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


def submit_write(function: Callable[..., str], *args: Any, **kwargs: Any) -> Future[str]:
    """Run an archive write (e.g. ``put_stream``) on a writer thread."""
    return _WRITERS.submit(function, *args, **kwargs)


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


def checked(key: str, content: bytes) -> bytes:
    actual = hashlib.sha256(content).hexdigest()
    if actual != digest_of(key):
        raise BlobCorrupted(key, actual)
    return content


def spool(fileobj: IO[bytes], directory: Path, *, named: bool = False) -> tuple[str, int, IO[bytes]]:
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


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; ValueError otherwise."""
    if not url.startswith("s3://"):
        raise ValueError("must be s3://bucket or s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError("must name a bucket: s3://bucket/prefix")
    return bucket, prefix.strip("/")
