"""Large documents in bounded memory, through the API: base64 in JSON decoded while the body is read
(with every JSON escape a client may use), multipart files left on disk, documents and evidence
packages streamed out with the archive's hash still checked, and a real server's peak memory."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from urllib3 import encode_multipart_formdata

from benchmarks.memory import big_pdf, status_kb
from connector import models
from connector.lib.storage import BlobCorrupted, S3Store
from tests.helpers import letter_payload, server_thread

MB = 1024 * 1024


@pytest.fixture(scope="module")
def pdf() -> bytes:
    """A valid PDF of 1.5 MB: its base64 (2 MB) is read in several pieces and decoded to a file."""
    return big_pdf(1.5)


def _json_text(written: str, *, before: str = "", key: str = "content_base64") -> bytes:
    """A letter body whose one document's base64 is ``written`` exactly as given (raw JSON text)."""
    payload = {k: v for k, v in letter_payload().items() if k != "documents"}
    head = json.dumps(payload, ensure_ascii=False)[:-1]
    return (f'{head}, {before}"documents": [{{"filename": "gros.pdf", "{key}": "{written}"}}]}}').encode()


def _json_body(pdf: bytes, encode: Any = None, *, before: str = "", key: str = "content_base64") -> bytes:
    """A letter body with ``pdf`` as base64, each character written by ``encode`` (default: as is)."""
    text = base64.b64encode(pdf).decode()
    return _json_text(text if encode is None else "".join(encode(c) for c in text), before=before, key=key)


def _letters(services: Any) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(models.Letter)) or 0)


def _post(client: Any, auth: dict[str, str], body: bytes, **headers: str) -> Any:
    return client.post("/v1/letters", data=body, headers={**auth, **headers, "Content-Type": "application/json"})


def _post_multipart(client: Any, auth: dict[str, str], pdf: bytes, **headers: str) -> Any:
    # Encoded here: werkzeug's test client spools a large form to a temporary file it never closes.
    body, content_type = encode_multipart_formdata({
        "recipient": json.dumps(letter_payload()["recipient"]),
        "documents": ("gros.pdf", pdf, "application/pdf"),
    })
    return client.post("/v1/letters", data=body, headers={**auth, **headers, "Content-Type": content_type})


def _unicode_escape(char: str) -> str:
    return f"\\u{ord(char):04x}" if char in "AZaz09+/" else char


@pytest.mark.parametrize(
    "encode, before, key",
    [
        (None, "", "content_base64"),
        # PHP's json_encode writes every "/" as "\/".
        (lambda c: "\\/" if c == "/" else c, "", "content_base64"),
        (_unicode_escape, "", "content_base64"),
        # The key itself escaped, the documents after other fields and whitespace.
        (None, '"metadata": {"dossier": "A-1"},\n  ', "content\\u005fbase64"),
    ],
    ids=["plain", "escaped-slashes", "unicode-escapes", "escaped-key"],
)
def test_a_large_base64_document_is_stored_byte_exact(client, auth, services, pdf, encode, before, key):
    response = _post(client, auth, _json_body(pdf, encode, before=before, key=key))
    assert response.status_code == 201, response.json
    letter = response.json
    assert letter["documents"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert letter["documents"][0]["size"] == len(pdf)
    document = client.get(f"/v1/letters/{letter['id']}/document", headers=auth)
    assert document.status_code == 200
    assert document.data == pdf
    assert document.headers["Content-Length"] == str(len(pdf))
    assert document.headers["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(pdf).digest()).decode()


def test_random_escapes_and_piece_boundaries_decode_as_a_whole_read_would(client, auth):
    """Escapes anywhere (including across the 256 KB pieces the body is read in)."""
    # 0.6 MB: its base64 (0.8 MB) still spans several pieces, escaped or not; the size is not the point
    # here, and at half its characters escaped the 1.5 MB document made a 7 MB body to decode.
    pdf = big_pdf(0.6)
    rng = random.Random(13)
    for _ in range(3):
        rate = rng.choice([0.001, 0.05, 0.5])

        def encode(char: str, rate: float = rate) -> str:
            if rng.random() >= rate:
                return char
            return rng.choice([f"\\u{ord(char):04x}", f"\\u{ord(char):04X}"] + (["\\/"] if char == "/" else []))

        response = _post(client, auth, _json_body(pdf, encode))
        assert response.status_code == 201, response.json
        assert response.json["documents"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t[: len(t) // 2] + "*" + t[len(t) // 2 + 1:],  # a character outside the alphabet
        lambda t: t[: len(t) // 2] + "é" + t[len(t) // 2 + 1:],  # not even ASCII
        lambda t: t[: len(t) // 2] + "\\u00e9" + t[len(t) // 2 + 1:],  # the same, escaped
        lambda t: t[: len(t) // 2] + "\\n" + t[len(t) // 2:],  # MIME line breaks are refused, as before
        lambda t: t[:400_000] + "==" + t[400_000:],  # padding in the middle
        lambda t: t.rstrip("=")[:-1],  # an incomplete last quantum
        lambda t: t + "A==",  # data after the end
        lambda t: t + "=QUFB",  # data after padding
    ],
    ids=["star", "non-ascii", "escaped-non-ascii", "line-break", "middle-padding", "truncated", "trailing",
         "after-padding"],
)
def test_bad_large_base64_is_refused_naming_the_field_and_nothing_is_stored(client, auth, services, spoil):
    text = base64.b64encode(big_pdf(1.2)).decode()
    if not text.endswith("="):
        text = text[:-1] + "="  # give the text padding, so that the spoils above apply
    response = _post(client, auth, _json_text(spoil(text)))
    assert response.status_code == 422, response.json
    assert response.json["error"] == {"code": "invalid_base64", "message": "content_base64 is not valid base64.",
                                      "field": "documents.0.content_base64"}
    assert _letters(services) == 0


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: body[: len(body) // 2],  # cut short inside the string
        lambda body: body.replace(b'"gros.pdf", "content_base64": "', b'"gros.pdf", "content_base64": "\x01'),
        lambda body: body[:900_000] + b"\\x" + body[900_000:],  # an escape JSON does not have
        lambda body: body[:-3],  # the string ends but the JSON does not
    ],
    ids=["truncated", "control-character", "bad-escape", "unclosed"],
)
def test_a_large_body_that_is_not_json_is_a_400(client, auth, services, pdf, spoil):
    response = _post(client, auth, spoil(_json_body(pdf)))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_json"
    assert _letters(services) == 0


def test_long_strings_elsewhere_are_validated_as_before(client, auth, services, pdf):
    """Only documents[].content_base64 is decoded aside: a long message is still too long."""
    body = json.loads(_json_body(pdf))
    body["message"] = "x" * (2 * MB)
    response = _post(client, auth, json.dumps(body).encode())
    assert response.status_code == 422
    assert response.json["error"]["field"] == "message"
    wrapped = json.loads(_json_body(pdf))
    wrapped["metadata"] = {"content_base64": "y" * 200_000}  # same key, another place: not a document
    response = _post(client, auth, json.dumps(wrapped).encode())
    assert response.status_code == 422
    assert response.json["error"]["field"].startswith("metadata")
    assert _letters(services) == 0


@pytest.fixture
def small_limit(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    settings_overrides["max_document_bytes"] = 1 * MB
    return settings_overrides


def test_a_document_over_the_limit_is_a_413_naming_it(small_limit, client, auth, services, pdf):
    response = _post(client, auth, _json_body(pdf))
    assert response.status_code == 413
    assert response.json["error"]["code"] == "document_too_large"
    assert response.json["error"]["field"] == "documents.0.content_base64"
    response = _post_multipart(client, auth, pdf)
    assert response.status_code == 413
    assert response.json["error"]["field"] == "documents.0"
    assert _letters(services) == 0


def test_large_multipart_and_json_letters_are_idempotent(client, auth, pdf):
    def multipart(content: bytes) -> Any:
        return _post_multipart(client, auth, content, **{"Idempotency-Key": "multi-1"})

    first = multipart(pdf)
    assert first.status_code == 201, first.json
    assert multipart(pdf).json["id"] == first.json["id"]
    reused = multipart(big_pdf(1.5))  # same key, other bytes
    assert (reused.status_code, reused.json["error"]["code"]) == (422, "idempotency_key_reused")
    assert client.get(f"/v1/letters/{first.json['id']}/document", headers=auth).data == pdf

    body = _json_body(pdf)
    sent = _post(client, auth, body, **{"Idempotency-Key": "json-1"})
    assert sent.status_code == 201
    assert _post(client, auth, body, **{"Idempotency-Key": "json-1"}).json["id"] == sent.json["id"]
    reused = _post(client, auth, _json_body(big_pdf(1.5)), **{"Idempotency-Key": "json-1"})
    assert (reused.status_code, reused.json["error"]["code"]) == (422, "idempotency_key_reused")


def _access_lines(services: Any, letter_id: str, what: str) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(models.AccessLog).where(
            models.AccessLog.letter_id == letter_id, models.AccessLog.what == what)) or 0)


def test_a_large_document_is_streamed_and_a_changed_one_never_arrives_whole(client, auth, services, pdf):
    letter = _post(client, auth, _json_body(pdf)).json
    read = client.get(f"/v1/letters/{letter['id']}/document", headers=auth, buffered=False)
    assert read.is_streamed
    assert b"".join(read.response) == pdf
    read.close()
    assert _access_lines(services, letter["id"], "document:0") == 1

    key = "sha256:" + hashlib.sha256(pdf).hexdigest()
    forged = pdf[:-10] + b"forged!!!\n"
    if isinstance(services.blobs, S3Store):
        from tests import s3_server

        s3_server.client(services.settings.storage_endpoint_url).put_object(
            Bucket=services.blobs.bucket, Key=services.blobs.object_name(key), Body=forged,
            ChecksumAlgorithm="SHA256")
    else:
        digest = key[7:]
        path = services.settings.data_dir / "archive" / digest[:2] / digest[2:4] / digest
        path.chmod(0o600)
        path.write_bytes(forged)
    read = client.get(f"/v1/letters/{letter['id']}/document", headers=auth, buffered=False)
    received = bytearray()
    with pytest.raises(BlobCorrupted):
        for chunk in read.response:
            received += chunk
    read.close()
    assert len(received) < len(pdf)  # cut short of Content-Length: the client sees a failed download
    assert _access_lines(services, letter["id"], "document:0") == 1  # the failed read is not logged
    package = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
    assert package.status_code == 500
    assert package.json["error"]["code"] == "archive_object_damaged"


def test_the_evidence_package_of_a_large_letter_holds_it_and_validates(client, auth, services, pdf, drain, tmp_path):
    import bagit

    letter = _post(client, auth, _json_body(pdf)).json
    drain()
    response = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(response.data).digest()).decode()
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        document = next(n for n in names if "/data/documents/" in n)
        assert archive.read(document) == pdf
        archive.extractall(tmp_path)
    root = tmp_path / names[0].split("/")[0]
    bag = bagit.Bag(str(root))
    bag.validate()  # manifests (SHA-256 and SHA-512) and Payload-Oxum, computed while writing
    from click.testing import CliRunner

    from connector.cli import main

    key = tmp_path / "seal-key.pem"
    key.write_bytes(client.get("/.well-known/lre-bridge/seal-key.pem").data)
    target = tmp_path / "package.zip"
    target.write_bytes(response.data)
    result = CliRunner().invoke(main, ["evidence", "verify", str(target), "--public-key", str(key)])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_serving_process_stays_within_bounds_while_large_documents_go_in_and_out(tmp_path):
    """A real ``lre-bridge serve``: 12 MB PDFs sent by multipart and as base64 (two at once), then
    read back and packaged; the serving process's peak (VmHWM) grows by far less than one
    document. Held whole, one base64 send alone added about eight times its size."""
    from benchmarks.bridge import Bridge
    from benchmarks.memory import one_letter

    content = big_pdf(12)
    with Bridge(tmp_path / "bridge") as bridge:
        one_letter(bridge, big_pdf(0.05), "json", "warm-up")
        worker = max(bridge.pids(), key=lambda pid: status_kb(pid, "VmRSS"))
        idle = status_kb(worker, "VmRSS") / 1024
        threads = [threading.Thread(target=one_letter, args=(bridge, content, how, f"big-{how}"))
                   for how in ("multipart", "json")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = status_kb(worker, "VmHWM") / 1024
        spool = Path(bridge.data_dir) / "spool"
        left = [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []
    assert peak - idle < 25, f"peak {peak:.0f} MB, idle {idle:.0f} MB"
    assert not left  # every temporary file was removed


def test_a_differential_check_of_the_incremental_base64_decoder_against_the_standard_library():
    """The decoder used for long strings accepts and refuses exactly what b64decode(validate=True)
    does, however the text is cut into pieces."""
    import binascii

    from connector.lib.spool import Base64Sink, HashingFile

    rng = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    directory = Path(tempfile.mkdtemp())
    for trial in range(4000):
        if trial % 2:
            text = base64.b64encode(os.urandom(rng.randint(0, 30))).decode()
            if text and rng.random() < 0.6:
                at = rng.randrange(len(text))
                text = text[:at] + rng.choice(alphabet + " \n-_é") + text[at + 1:]
        else:
            text = "".join(rng.choice("AB=/+" if trial % 4 else alphabet) for _ in range(rng.randint(0, 12)))
        data = text.encode()
        try:
            expected: bytes | None = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            expected = None
        out = HashingFile(directory)
        sink = Base64Sink(out)
        at = 0
        while at < len(data):
            step = rng.randint(0, 5)
            sink.write(data[at:at + step])
            at += step
        sink.finish()
        got = None if sink.error else out.rewound().read()
        out.close()
        assert got == expected, (text, sink.error)


@pytest.fixture
def big_pdf_server(pdf: bytes) -> Any:
    """A loopback server: /big.pdf is the 1.5 MB PDF, sent in pieces without a Content-Length."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Connection", "close")
            self.end_headers()
            for at in range(0, len(pdf), 100_000):
                self.wfile.write(pdf[at:at + 100_000])

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = server_thread(server)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/big.pdf"
    server.shutdown()
    server.server_close()


def test_a_large_document_fetched_by_url_is_stored_byte_exact(client, auth, pdf, big_pdf_server):
    body = letter_payload(documents=[{"filename": "distant.pdf", "url": big_pdf_server}])
    response = client.post("/v1/letters", json=body, headers=auth)
    assert response.status_code == 201, response.json
    assert response.json["documents"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert client.get(f"/v1/letters/{response.json['id']}/document", headers=auth).data == pdf


def test_a_document_url_over_the_limit_is_cut_off_with_a_413(small_limit, client, auth, services, big_pdf_server):
    body = letter_payload(documents=[{"filename": "distant.pdf", "url": big_pdf_server}])
    response = client.post("/v1/letters", json=body, headers=auth)
    assert response.status_code == 413
    assert response.json["error"]["field"] == "documents.0.url"
    assert _letters(services) == 0
