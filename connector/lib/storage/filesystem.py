"""``FileSystemStore``: the embedded default, blobs as files under ``LRE_DATA_DIR/archive``."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO

from connector.lib.storage.base import (
    CHUNK_BYTES,
    VerifyingReader,
    checked,
    digest_of,
    key_for,
    spool,
    submit_write,
)


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
        return submit_write(self._write, key, path, (content,), new_dirs)

    def put(self, content: bytes, *, retain_until: datetime | None = None) -> str:
        key, path, new_dirs = self._prepare(self.key_for(content))
        return key if path is None else self._write(key, path, (content,), new_dirs)

    def put_stream(self, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> str:
        # Spooled beside the archive (same filesystem), then renamed: the key is known only at the end.
        key, _size, spooled = spool(fileobj, self.root / ".incoming")
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
            return checked(key, path.read_bytes())
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
