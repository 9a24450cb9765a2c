"""Archive storage for documents and proofs: content-addressed blobs behind a small interface.

The filesystem implementation is the default; an object store (S3, OVH, Scaleway) can implement
the same methods. Blobs are written before the database row that references them, so a
crash leaves at worst an orphan blob, never a row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

# Archive writes are durable writes, which wait on the disk and not on the CPU (nor the GIL): the
# send path starts them here and builds the letter's rows meanwhile. A few threads are enough;
# the writes of a process are not expected to outpace its renders.
_WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lre-archive")


def _new_writers_after_fork() -> None:
    # A forked child (gunicorn's worker) inherits the pool's bookkeeping but none of its threads:
    # had the parent used it, the child could wait forever on a write no thread will run.
    global _WRITERS
    _WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lre-archive")


os.register_at_fork(after_in_child=_new_writers_after_fork)


class BlobStore(Protocol):
    def key_for(self, content: bytes) -> str:
        """The key ``put`` gives ``content`` (keys are derived from the bytes alone)."""
        ...

    def put(self, content: bytes) -> str:
        """Store ``content``; return its key (stable for the same bytes)."""
        ...

    def put_in_background(self, content: bytes) -> Future[str]:
        """Start storing ``content`` on a writer thread; the future gives its key once it is durable.

        A caller must wait for the future before it commits a row that references the key.
        """
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; KeyError if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob (retention over); absent keys are ignored."""
        ...


class FileSystemStore:
    """Blobs as files named by their SHA-256 under ``root`` (written atomically, read-only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) != 71 or not key.startswith("sha256:"):
            raise KeyError(key)
        digest = key[7:]
        return self.root / digest[:2] / digest[2:4] / digest

    def key_for(self, content: bytes) -> str:
        return "sha256:" + hashlib.sha256(content).hexdigest()

    def put_in_background(self, content: bytes) -> Future[str]:
        key, path, new_dirs = self._prepare(content)
        if path is None:
            done: Future[str] = Future()
            done.set_result(key)
            return done
        return _WRITERS.submit(self._write, key, path, content, new_dirs)

    def put(self, content: bytes) -> str:
        key, path, new_dirs = self._prepare(content)
        return key if path is None else self._write(key, path, content, new_dirs)

    def _prepare(self, content: bytes) -> tuple[str, Path | None, tuple[Path, ...]]:
        """The key, the path to write (None when the blob is already stored) and the directories
        whose entries changed and must reach the disk with it (the file's own, and the parents of
        any directory made here)."""
        key = self.key_for(content)
        path = self._path(key)
        if path.exists():
            return key, None, ()
        made = [d for d in (path.parent.parent, path.parent) if not d.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        return key, path, tuple(dict.fromkeys([*(d.parent for d in made), path.parent]))

    @staticmethod
    def _write(key: str, path: Path, content: bytes, dirs: tuple[Path, ...]) -> str:
        """Write durably under a temporary name, then rename into place (readers never see half a file).

        O_DSYNC makes each write return only once the bytes are on disk: a write and an fsync in one
        system call. On a writer thread that matters, because every system call gives up the GIL
        and taking it back waits for the request thread; a handful of calls keeps that short. The
        directories are synced last: until then, a power cut could lose the file's name (the row
        that the caller commits next would point at nothing).
        """
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DSYNC | os.O_CLOEXEC, 0o440)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        for directory in dirs:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return key

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
