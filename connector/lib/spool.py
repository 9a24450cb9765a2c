"""Large request data on disk, not in memory: temporary files, hashed while written, size-bounded.

A 19 MB PDF held whole costs its size several times over (the body, the decoded string, the
decoded bytes, the copies made by whoever reads them next); four sends at once then take a process
past any sensible memory budget. Here, everything larger than ``MEMORY_BYTES`` goes through a
temporary file under ``LRE_DATA_DIR/spool`` (owner-only: documents are personal data), copied in
``CHUNK_BYTES`` pieces, so that the memory a transfer takes does not depend on its size.

``Base64Sink`` decodes base64 text written to it in pieces of any length (as a JSON string is
read) into such a file, with the same strictness as ``base64.b64decode(..., validate=True)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

CHUNK_BYTES = 256 * 1024
# Below this, bytes stay in memory: a file per small letter would only cost system calls.
MEMORY_BYTES = 1024 * 1024


class TooLarge(ValueError):
    """More bytes than the caller's limit."""


def temporary_file(directory: Path) -> BinaryIO:
    """An anonymous temporary file (gone when closed, or if the process dies) in ``directory``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)  # type: ignore[return-value]


class HashingFile:
    """A temporary file that counts and hashes (SHA-256) what is written to it, up to a limit.

    ``memory_bytes``: the file stays in memory until it passes that size, and only then goes to
    disk (``tempfile.SpooledTemporaryFile``): for data that is most often small, such as a proof.
    """

    def __init__(self, directory: Path, max_bytes: int | None = None, *, memory_bytes: int = 0) -> None:
        if memory_bytes:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            spooled = tempfile.SpooledTemporaryFile(max_size=memory_bytes, dir=directory)
            self.file: BinaryIO = spooled  # type: ignore[assignment]
        else:
            self.file = temporary_file(directory)
        self.memory_bytes = memory_bytes
        self.size = 0
        self.max_bytes = max_bytes
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        if self.max_bytes is not None and self.size + len(data) > self.max_bytes:
            raise TooLarge(f"larger than the {self.max_bytes} bytes limit")
        self.file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def in_memory(self) -> bool:
        """Whether everything written is still in memory (``memory_bytes`` not passed)."""
        return self.size <= self.memory_bytes

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes written (fewer if fewer were), read without moving the writes' position."""
        position = self.file.tell()
        try:
            self.file.seek(0)
            return self.file.read(size)
        finally:
            self.file.seek(position)

    def rewound(self) -> BinaryIO:
        """The file, flushed and at its start (the caller owns it from here: close it)."""
        self.file.flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_to_file(source: IO[bytes], directory: Path, max_bytes: int | None = None) -> HashingFile:
    """Copy ``source`` to a new temporary file in pieces; TooLarge past ``max_bytes``."""
    out = HashingFile(directory, max_bytes)
    try:
        while chunk := source.read(CHUNK_BYTES):
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    return out


class FileView(io.RawIOBase):
    """An independent reader over an open file: its own position (``os.pread``), and closing it
    leaves the file open. Several readers (a check, an archive write) can share one temporary file."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self._fd = file.fileno()
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, len(buffer), self._position)
        memoryview(buffer).cast("B")[: len(data)] = data
        self._position += len(data)
        return len(data)


def reader_over(file: IO[bytes]) -> BinaryIO:
    """A buffered ``FileView`` of ``file`` from its first byte (close it when done)."""
    return io.BufferedReader(FileView(file), CHUNK_BYTES)  # type: ignore[return-value]


def chunks_of(fileobj: IO[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``fileobj`` from its current position to its end, in pieces of ``size`` bytes."""
    while chunk := fileobj.read(size):
        yield chunk


_INVALID = "content_base64 is not valid base64."
TOO_LARGE = "too_large"  # Base64Sink.error when the decoded bytes pass the limit


class Base64Sink:
    """Decode base64 given in pieces (of any length) into ``out``, as strictly as
    ``base64.b64decode(text, validate=True)`` decodes it whole: only the standard alphabet, no
    whitespace, padding only at the very end, whole quanta. ``error`` says what was wrong (and
    nothing more is decoded once it is set); ``finish`` must be called at the end."""

    def __init__(self, out: HashingFile) -> None:
        self.out = out
        self.error: str | None = None
        self._pending = b""  # fewer than 4 characters, or a tail that may hold the padding

    def write(self, text: bytes) -> None:
        if self.error is not None or not text:
            return
        data = self._pending + text
        padding = data.find(b"=")
        # Whole quanta before any padding are decoded now, but the last one waits, with what
        # follows it, for more text or for the end: padding after it decides what is accepted.
        cut = max(0, ((len(data) if padding < 0 else padding) // 4) * 4 - 4)
        if padding < 0:
            head, self._pending = data[:cut], data[cut:]
        else:
            tail = data[padding:]
            if tail.count(b"=") != len(tail):  # text after padding is refused whatever it is
                self.error = _INVALID
                return
            # b64decode accepts any run of '=' after a whole quantum: three stand for any longer run.
            head, self._pending = data[:cut], data[cut:padding] + b"=" * min(len(tail), 3)
        self._decode(head)

    def _decode(self, head: bytes) -> None:
        if not head:
            return
        try:
            self.out.write(binascii.a2b_base64(head, strict_mode=True))
        except TooLarge:  # a ValueError too: caught first
            self.error = TOO_LARGE
        except (binascii.Error, ValueError):
            self.error = _INVALID

    def fail(self, message: str) -> None:
        """Stop decoding: the text turned out not to be base64 (e.g. a non-ASCII character)."""
        if self.error is None:
            self.error = message

    def finish(self) -> None:
        if self.error is not None:
            return
        tail, self._pending = self._pending, b""
        try:
            self.out.write(base64.b64decode(tail, validate=True))
        except TooLarge:  # a ValueError too: caught first
            self.error = TOO_LARGE
        except (binascii.Error, ValueError):
            self.error = _INVALID


class SpooledBase64:
    """One long base64 string of a request body, decoded into a temporary file as it was read."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.out = HashingFile(directory, max_bytes)
        self.sink = Base64Sink(self.out)
        self.filename = ""  # set once the body is validated (the document's ``filename``)

    def close(self) -> None:
        self.out.close()
