"""Documents go to AR24 and Maileva as a streamed multipart body: a large PDF is read from its file
piece by piece while it is sent, with its length declared, and arrives byte-exact.

The loopback server here is a real HTTP server (werkzeug) that spools what it receives to disk, so
that the memory measured in this process is the adapter's, not the receiver's."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import pytest
from werkzeug.formparser import parse_form_data

from connector.providers.ar24 import AR24Provider, encrypt_response, paris_date
from connector.providers.base import OutgoingDocument, ProviderError
from connector.providers.maileva import MailevaProvider
from tests.helpers import LoopbackHTTPServer, peak_allocated_while
from tests.providers.conftest import NOW, make_context, make_letter

MB = 1024 * 1024
AR24_KEY = "7X9gx9E3Qx4EiUdB63nc"
OTP_CONTEXT = {"auth_otp_hash": "b1946ac9", "auth_otp_expires_at": "2026-11-27T09:00:00+00:00"}


class Receiver(LoopbackHTTPServer):
    """Answers AR24's and Maileva's upload paths, keeping each uploaded file's name, size and hash
    and the request's declared length. The body is received to a temporary file in pieces and its
    form parsed from there (werkzeug's parser, files to disk): the receiver holds pieces, not files.
    (werkzeug's development server, in this process, allocated 10 MB per request on its own.)"""

    def __init__(self) -> None:
        self.uploads: list[dict[str, Any]] = []
        self.refuse_next_upload = False  # answer the next upload 401 (Maileva's expired token)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                status, headers, body = receiver.answer(self)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def _record(self, handler: BaseHTTPRequestHandler, body: IO[bytes], field: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
                   "CONTENT_LENGTH": str(length), "wsgi.input": body}
        _, form, files = parse_form_data(environ)
        upload = files[field]
        digest, size = hashlib.sha256(), 0
        while chunk := upload.stream.read(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        upload.close()
        self.uploads.append({"filename": upload.filename, "size": size, "sha256": digest.hexdigest(),
                             "form": dict(form), "content_length": length,
                             "chunked": "chunked" in handler.headers.get("Transfer-Encoding", "")})

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        path = handler.path.split("?")[0]
        remaining = int(handler.headers.get("Content-Length") or 0)
        with tempfile.TemporaryFile() as body:
            while remaining:
                chunk = handler.rfile.read(min(remaining, 64 * 1024))
                if not chunk:
                    break
                body.write(chunk)
                remaining -= len(chunk)
            body.seek(0)
            if path == "/ar24/api/attachment":
                self._record(handler, body, "file")
                return self._ar24({"status": "SUCCESS", "result": {"file_id": len(self.uploads)}})
            if path.endswith("/documents"):
                if self.refuse_next_upload:
                    self.refuse_next_upload = False
                    return _json({"error": "invalid_token"}, 401)
                self._record(handler, body, "document")
                return _json({"id": "doc-1"}, 201)
        if path == "/ar24/api/mail":
            return self._ar24({"status": "SUCCESS", "result": {"id": 4242}})
        if path == "/maileva/token":
            return _json({"access_token": "tok", "expires_in": 3600})
        if path.endswith("/sendings"):
            return _json({"id": "sending-1"}, 201)
        if path.endswith("/recipients"):
            return _json({"id": "recipient-1"}, 201)
        if path.endswith("/submit"):
            return _json({}, 202)
        return _json({"error": "not here"}, 404)

    @staticmethod
    def _ar24(payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, encrypt_response(AR24_KEY, paris_date(NOW), json.dumps(payload).encode()).encode()


def _json(payload: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 19 MB document on disk (the adapters do not parse it: random bytes after a PDF header)."""
    path = tmp_path_factory.mktemp("upload") / "gros.pdf"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for piece in [b"%PDF-1.4\n"] + [os.urandom(MB) for _ in range(19)]:
            out.write(piece)
            digest.update(piece)
    return path, digest.hexdigest()


def _document(path: Path, sha256: str, size: int | None = None) -> OutgoingDocument:
    return OutgoingDocument("gros.pdf", lambda: path.open("rb"), sha256, path.stat().st_size if size is None else size)



def ar24(receiver: Receiver) -> AR24Provider:
    return AR24Provider(make_context({"base_url": f"{receiver.url}/ar24/api", "token": "tok", "user_id": "7731",
                                      "private_key": AR24_KEY}))


def maileva(receiver: Receiver) -> MailevaProvider:
    return MailevaProvider(make_context({
        "base_url": f"{receiver.url}/maileva", "auth_url": f"{receiver.url}/maileva/token", "client_id": "c",
        "client_secret": "s", "username": "u", "password": "p", "sender_id": "sender-1"}))


@pytest.mark.parametrize("provider", ["ar24", "maileva"])
def test_a_large_document_is_uploaded_streamed_byte_exact_in_bounded_memory(receiver, large_file, provider):
    """19 MB go out while the adapter allocates a fraction of it; requests' ``files=`` built the
    whole multipart body in memory first (about twice the document)."""
    path, sha256 = large_file
    adapter = ar24(receiver) if provider == "ar24" else maileva(receiver)
    letter = make_letter(documents=(_document(path, sha256),), submit_context=OTP_CONTEXT)
    result, peak = peak_allocated_while(lambda: adapter.submit(letter))
    assert result.provider_letter_id in ("4242", "sending-1")
    [upload] = receiver.uploads
    assert (upload["filename"], upload["size"], upload["sha256"]) == ("gros.pdf", path.stat().st_size, sha256)
    # The length is declared (some providers refuse chunked uploads), and the form fields came along.
    assert upload["content_length"] and upload["content_length"] > upload["size"] and not upload["chunked"]
    assert upload["form"] == ({"token": "tok", "date": paris_date(NOW), "id_user": "7731", "file_name": "gros.pdf"}
                              if provider == "ar24" else {"name": "gros.pdf"})
    assert peak < 3 * MB, f"{peak / MB:.1f} MB allocated to upload {upload['size'] / MB:.0f} MB"


@pytest.mark.parametrize("provider", ["ar24", "maileva"])
def test_a_document_shorter_than_its_declared_size_is_an_error_not_a_hang(receiver, tmp_path, provider):
    path = tmp_path / "court.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 1000)
    adapter = ar24(receiver) if provider == "ar24" else maileva(receiver)
    letter = make_letter(documents=(_document(path, "0" * 64, size=5000),), submit_context=OTP_CONTEXT)
    with pytest.raises(ProviderError) as refused:
        adapter.submit(letter)
    assert (refused.value.code, refused.value.permanent) == ("document_unreadable", False)
    assert receiver.uploads == []


def test_maileva_sends_the_whole_document_again_after_renewing_a_refused_token(receiver, large_file):
    """The 401 retry makes a new body from the document's start: a consumed stream is never resent."""
    path, sha256 = large_file
    receiver.refuse_next_upload = True
    maileva(receiver).submit(make_letter(documents=(_document(path, sha256),)))
    [upload] = receiver.uploads
    assert (upload["size"], upload["sha256"]) == (path.stat().st_size, sha256)
