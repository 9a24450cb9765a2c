"""Files as HTTP answers, streamed in pieces: a temporary file, or an archive object whose hash is
checked on the way out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from flask import Response

from connector.lib import spool
from connector.lib.storage import BlobStore


def file_response(target: IO[bytes], size: int, *, mimetype: str, headers: dict[str, str]) -> Response:
    """A response streaming ``target`` (an open file, at its start) in pieces, closing it at the end."""

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := target.read(spool.CHUNK_BYTES):
                yield chunk
        finally:
            target.close()

    response = Response(chunks(), mimetype=mimetype, headers={**headers, "Content-Length": str(size)},
                        direct_passthrough=True)
    response.call_on_close(target.close)  # also when the client leaves before the end
    return response


def blob_response(blobs: BlobStore, key: str, size: int, *, mimetype: str, headers: dict[str, str],
                  on_verified: Callable[[], None], before: Callable[[], None] | None = None) -> Response:
    """An archive object as an answer: bytes when small; a large one streamed in pieces.

    The archive's hash check can only end with the last byte, so the last piece is held back until
    the object has been read to its end and verified: a changed object never reaches the client
    whole (the connection is cut short of ``Content-Length``, which every client reports as an
    error), and ``on_verified`` (the access log) runs only for a good, complete answer. A small
    object is read and verified before the answer starts: BlobCorrupted is then an error answer.
    ``before`` runs first, in the request (e.g. to release the request's database session).
    """
    if size <= spool.MEMORY_BYTES:
        content = blobs.get(key)
        on_verified()
        return Response(content, mimetype=mimetype, headers=headers)
    reader = blobs.open(key)  # KeyError (missing object) here, before the answer starts

    def chunks() -> Iterator[bytes]:
        try:
            held = reader.read(spool.CHUNK_BYTES)
            while True:
                following = reader.read(spool.CHUNK_BYTES)  # at the end: BlobCorrupted if changed
                if not following:
                    break
                yield held
                held = following
            on_verified()
            yield held
        finally:
            reader.close()

    if before is not None:
        before()
    response = Response(chunks(), mimetype=mimetype, headers={**headers, "Content-Length": str(size)},
                        direct_passthrough=True)
    response.call_on_close(reader.close)
    return response
