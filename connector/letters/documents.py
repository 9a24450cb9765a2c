"""The PDFs of a letter coming in: uploaded, base64 in JSON or fetched by URL, spooled to disk in
bounded memory, checked to be a readable PDF within the size limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import IO, Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from connector.errors import BridgeError, LetterRejected, TooLarge
from connector.letters.requests import DocumentIn
from connector.lib import http, spool
from connector.services import Services


class IncomingDocument:
    """A PDF on its way into the archive: bytes when small, else a seekable temporary file.

    Large documents never exist whole in memory: they are checked, hashed and archived from the
    file (``open``). ``content`` reads the whole file, for the few callers that need bytes.
    """

    def __init__(self, filename: str, content: bytes | IO[bytes], source_url: str | None = None, *,
                 size: int | None = None, sha256: str | None = None) -> None:
        self.filename = filename
        self.source_url = source_url
        if isinstance(content, bytes | bytearray):
            self._bytes: bytes | None = bytes(content)
            self._file: IO[bytes] | None = None
            self.size = len(self._bytes)
            self.sha256 = sha256 or hashlib.sha256(self._bytes).hexdigest()
            return
        self._bytes, self._file = None, content
        if size is None or sha256 is None:
            digest, size = hashlib.sha256(), 0
            for chunk in spool.chunks_of(self.open()):
                digest.update(chunk)
                size += len(chunk)
            sha256 = digest.hexdigest()
        self.size, self.sha256 = size, sha256

    @property
    def in_memory(self) -> bool:
        return self._bytes is not None

    @property
    def content(self) -> bytes:
        """The whole document as bytes (read from the file for a large one)."""
        if self._bytes is not None:
            return self._bytes
        return self.open().read()

    def open(self) -> IO[bytes]:
        """The document from its first byte. For a file-backed document this is the file itself,
        rewound: read it to the end before the next ``open``, and do not close it (``close`` does)."""
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        assert self._file is not None
        self._file.seek(0)
        return self._file

    def reader(self) -> IO[bytes]:
        """An independent reader over the document from its first byte (close it when done)."""
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        assert self._file is not None
        return spool.reader_over(self._file)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def close_documents(documents: list[IncomingDocument]) -> None:
    """Close every temporary file of ``documents`` (none of them is read afterwards)."""
    for document in documents:
        document.close()


def _starts_like_pdf(stream: IO[bytes]) -> bool:
    # bytes.lstrip() semantics (ASCII whitespace) without reading more than a piece at a time.
    while chunk := stream.read(64 * 1024):
        rest = chunk.lstrip()
        if rest:
            return (rest + stream.read(8))[:5] == b"%PDF-"
    return False


def check_pdf(content: bytes | IncomingDocument, field: str, max_bytes: int) -> None:
    """Refuse anything that is not a readable PDF within the size limit (by content, not name).

    A file-backed document is read from its file: pypdf seeks to the parts it needs (the
    cross-reference table, the page tree) and never holds an attachment's stream.
    """
    size = len(content) if isinstance(content, bytes) else content.size
    if size > max_bytes:
        raise TooLarge("document_too_large", f"The document is larger than {max_bytes // (1024 * 1024)} MB.",
                       field)
    stream = io.BytesIO(content) if isinstance(content, bytes) else content.open()
    if not _starts_like_pdf(stream):
        raise LetterRejected("not_a_pdf", "The document is not a PDF file.", field)
    stream.seek(0)
    try:
        reader = PdfReader(stream)
        if reader.is_encrypted:
            raise LetterRejected("encrypted_pdf", "The PDF is password-protected; send it unprotected.", field)
        if len(reader.pages) < 1:
            raise LetterRejected("not_a_pdf", "The PDF has no pages.", field)
    except BridgeError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise LetterRejected("not_a_pdf", f"The PDF cannot be read ({type(exc).__name__}).", field) from None


def _spooled_base64(services: Services, decoded: spool.SpooledBase64, field: str) -> IncomingDocument:
    """A document whose base64 text was decoded into a temporary file while the body was read."""
    limit = services.settings.max_document_bytes
    if decoded.sink.error == spool.TOO_LARGE:
        raise TooLarge("document_too_large", f"The document is larger than {limit // (1024 * 1024)} MB.",
                       field)
    if decoded.sink.error is not None:
        raise LetterRejected("invalid_base64", "content_base64 is not valid base64.", field)
    out = decoded.out
    return IncomingDocument(decoded.filename, out.rewound(), size=out.size, sha256=out.sha256)


def load_documents(services: Services, docs: list[DocumentIn],
                   spooled: Mapping[str, spool.SpooledBase64] | None = None) -> list[IncomingDocument]:
    """Decode or download every document of the request, checking each one.

    ``spooled`` maps the stand-ins that ``connector.api.bodies`` put in place of long
    ``content_base64`` strings to the files they were decoded into. On an error every temporary
    file made so far is closed.
    """
    settings = services.settings
    out: list[IncomingDocument] = []
    try:
        for index, doc in enumerate(docs):
            field = f"documents.{index}"
            if doc.content_base64 is not None and spooled and doc.content_base64 in spooled:
                decoded = spooled[doc.content_base64]
                decoded.filename = doc.filename
                document = _spooled_base64(services, decoded, field + ".content_base64")
                out.append(document)
                check_pdf(document, field + ".content_base64", settings.max_document_bytes)
            elif doc.content_base64 is not None:
                try:
                    content = base64.b64decode(doc.content_base64, validate=True)
                except (binascii.Error, ValueError):
                    raise LetterRejected("invalid_base64", "content_base64 is not valid base64.",
                                   field + ".content_base64") from None
                check_pdf(content, field + ".content_base64", settings.max_document_bytes)
                out.append(IncomingDocument(doc.filename, content))
            else:
                assert doc.url is not None
                out.append(_download(services, doc.filename, doc.url, field))
    except BaseException:
        close_documents(out)
        raise
    return out


def _download(services: Services, filename: str, url: str, field: str) -> IncomingDocument:
    """The document at ``url``, streamed into a temporary file (never more than a piece in memory)."""
    settings = services.settings
    target = spool.HashingFile(settings.data_dir / "spool")
    try:
        try:
            http.check_url(url, allow_private=settings.allow_private_urls)
            http.fetch_to(
                url,
                target.write,
                max_bytes=settings.max_document_bytes,
                allow_private=settings.allow_private_urls,
                timeout=settings.url_fetch_timeout_seconds,
            )
        except http.UnsafeUrl as exc:
            raise LetterRejected("url_not_allowed", f"The document URL {exc}.", field + ".url") from None
        except http.TooLarge as exc:
            raise TooLarge("document_too_large", f"The document at this URL is {exc}.",
                           field + ".url") from None
        except Exception as exc:  # noqa: BLE001 - any network failure is the client's URL problem
            raise LetterRejected("url_fetch_failed", f"The document could not be downloaded: {type(exc).__name__}.",
                           field + ".url") from None
        if target.size <= spool.MEMORY_BYTES:
            content = target.rewound().read()
            target.close()
            document = IncomingDocument(filename, content, source_url=url)
        else:
            document = IncomingDocument(filename, target.rewound(), source_url=url, size=target.size,
                                        sha256=target.sha256)
    except BaseException:
        target.close()
        raise
    try:
        check_pdf(document, field + ".url", settings.max_document_bytes)
    except BaseException:
        document.close()
        raise
    return document


def safe_filename(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .") or "document"
    return cleaned if cleaned.lower().endswith(".pdf") else cleaned + ".pdf"


def put_stream_in_background(blobs: Any, fileobj: IO[bytes], *,
                             retain_until: datetime | None = None) -> Future[str]:
    """``blobs.put_stream(fileobj)`` on an archive writer thread, which then closes ``fileobj``."""
    from connector.lib import storage

    def write() -> str:
        with fileobj:
            return str(blobs.put_stream(fileobj, retain_until=retain_until))

    return storage.submit_write(write)
