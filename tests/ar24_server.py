"""An AR24-compatible HTTP server on loopback, for tests.

It speaks AR24's documented protocol: ``token`` and ``date`` (Europe/Paris) in the query (GET)
or form (POST), the ``signature`` header checked against the private key, successful answers
encrypted with the request's date, errors in clear JSON with AR24's slugs. It keeps mails in
memory and lets a test move a mail through its lifecycle (``advance``) and fire AR24's webhook
(``notify``).

    with AR24Server() as server:
        settings = server.settings()   # base_url, token, private_key, user_id
        ...
        server.advance(mail_id, "ar")   # the recipient accepted
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from werkzeug.datastructures import FileStorage
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from connector.providers.ar24 import DATE_FORMAT, PARIS, encrypt_response, paris_date, sign_date
from tests.helpers import LoopbackHTTPServer, server_thread

# AR24's proof codes → the mail's date and proof URL fields.
STEP_FIELDS = {
    "ev": ("ts_ev_date", "proof_ev_url"),
    "ar": ("view_date", "proof_ar_url"),
    "rf": ("refused_date", "proof_rf_url"),
    "ng": ("negligence_date", "proof_ng_url"),
    "bc": ("bounced_date", "proof_bc_url"),
}


def request_fields(
    method: str, url: str, headers: Any, body: bytes | str | None
) -> tuple[dict[str, str], dict[str, FileStorage]]:
    """The fields AR24 reads: the query string for GET, the (multipart or urlencoded) form for POST."""
    if method.upper() == "GET":
        return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)), {}
    if isinstance(body, str):
        body = body.encode()
    environ = EnvironBuilder(
        method="POST", data=body or b"", headers={"Content-Type": headers.get("Content-Type", "")}
    ).get_environ()
    # Copied into memory and the request closed: its spooled upload files would otherwise be left
    # for the garbage collector (a ResourceWarning raised in whichever test runs then).
    with Request(environ) as parsed:
        files = {name: FileStorage(io.BytesIO(upload.read()), filename=upload.filename, name=upload.name,
                                   content_type=upload.content_type) for name, upload in parsed.files.items()}
        return dict(parsed.form), files


def proof_pdf(code: str, mail_id: int) -> bytes:
    """The (deterministic) proof PDF the server serves for one mail and step."""
    return f"%PDF-1.4\n% AR24 test proof {code}-{mail_id}\n%%EOF\n".encode()


def large_proof_pieces(code: str, mail_id: int, size: int) -> Iterator[bytes]:
    """A proof PDF of ``size`` bytes (``proof_pdf``, then comment lines), made in 64 KB pieces as it
    is read: neither the server nor a test's check of it ever holds the whole."""
    head = proof_pdf(code, mail_id)
    line = b"%" + b"0" * 62 + b"\n"
    piece = line * 1024
    yield head
    left = size - len(head)
    while left > 0:
        yield piece if left >= len(piece) else piece[:left]
        left -= len(piece)


class _SmallDrains(WSGIRequestHandler):
    """werkzeug's request handler, but the drain it runs after each answer (reads of 10 MB while
    the client's socket is readable, as it is once closed) reads 64 KB at a time: each such read
    allocates its 10 MB, however little arrives, which a test measuring the bridge's memory in
    this process would count as the bridge's."""

    class _Reader:
        def __init__(self, raw: Any) -> None:
            self._raw = raw

        def read(self, size: int | None = -1) -> bytes:
            return self._raw.read(64 * 1024 if size is not None and size >= 10_000_000 else size)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._raw, name)

    def setup(self) -> None:
        super().setup()
        self.rfile = self._Reader(self.rfile)  # type: ignore[assignment]


class LargeProofServer(LoopbackHTTPServer):
    """AR24's proof links (``/get/proof/<code>-<mail id>``) answering ``large_proof_pieces`` of
    ``size`` bytes: set ``AR24Server.proof_root`` to its ``root``. The standard library's server,
    not werkzeug's: that one reads up to 10 MB into memory after each answer (draining what the
    client may still send), which a test measuring the client's memory in this process counts."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.served = 0
        proofs = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                code, _, mail_id = self.path.split("?")[0].rsplit("/", 1)[1].partition("-")
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(proofs.size))
                self.end_headers()
                for piece in large_proof_pieces(code, int(mail_id), proofs.size):
                    self.wfile.write(piece)
                proofs.served += 1

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.root = self.url


class _Refused(Exception):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug
        self.message = message


class AR24Server:
    """A loopback AR24. ``valid_otps`` are the codes ``/user/auth_otp`` accepts."""

    def __init__(
        self,
        *,
        token: str = "tok_test_5d1c",
        private_key: str = "7X9gx9E3Qx4EiUdB63nc",
        user_id: str = "7731",
        valid_otps: tuple[str, ...] = ("123456",),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.private_key = private_key
        self.user_id = user_id
        self.valid_otps = set(valid_otps)
        self.clock = clock or (lambda: datetime.now(UTC))
        # The sender's account as GET /user shows it (AR24's user object).
        self.user: dict[str, Any] = {
            "id": int(user_id),
            "firstname": "Claire",
            "lastname": "Dupont",
            "email": "gestion@dupont-immo.example",
            "statut": "professionnel",
            "confirmed": True,
            "cgu": True,
            "is_payment_possible": True,
            "is_identity_verified": True,
        }
        # Seconds to sit on a POST /mail answer *after* the mail exists (a lost answer).
        self.slow_send_seconds = 0.0
        # Where the proof links point, when not to this server (``LargeProofServer.root``).
        self.proof_root: str | None = None
        self.mails: dict[int, dict[str, Any]] = {}
        self.attachments: dict[str, tuple[str, bytes]] = {}
        self.otp_hashes: dict[str, datetime] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self._ids = itertools.count(48213)
        self._file_ids = itertools.count(90211)
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.root = ""

    # -- lifecycle of the server ------------------------------------------------------------

    def start(self) -> AR24Server:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_SmallDrains)
        self.root = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = server_thread(self._server)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> AR24Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.root}/api"

    def settings(self) -> dict[str, str]:
        """The bridge's AR24 provider settings for this server."""
        return {
            "base_url": self.base_url,
            "token": self.token,
            "private_key": self.private_key,
            "user_id": self.user_id,
        }

    # -- what a test does on AR24's side ----------------------------------------------------

    def advance(self, mail_id: int | str, code: str) -> None:
        """Move a mail one step: ``ev`` (deposit), ``ar``, ``rf``, ``ng`` or ``bc``."""
        date_field, url_field = STEP_FIELDS[code]
        with self._lock:
            mail = self.mails[int(mail_id)]
            mail[date_field] = paris_date(self.clock())
            mail[url_field] = f"{self.proof_root or self.root}/get/proof/{code}-{mail['id']}?token=prf{mail['id']}"
            mail["status"] = {"ev": "sent", "ar": "AR", "rf": "refused", "ng": "negligence", "bc": "bounced"}[code]

    def notify(self, mail_id: int | str, *, new_state: str = "") -> requests.Response:
        """Call the mail's webhook as AR24 does (form POST, nothing signed)."""
        mail = self.mails[int(mail_id)]
        return requests.post(mail["webhook"], data={"id_mail": str(mail["id"]), "new_state": new_state}, timeout=10)

    def calls_to(self, method: str, path: str) -> list[dict[str, str]]:
        return [fields for m, p, fields in self.calls if m == method and p == path]

    # -- the protocol ---------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        with Request(environ) as request:
            response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        path = request.path
        if request.method == "GET" and path.startswith("/get/proof/"):
            code, _, mail_id = path.rsplit("/", 1)[1].partition("-")
            mail = self.mails.get(int(mail_id)) if mail_id.isdigit() else None
            if mail is None or request.args.get("token") != f"prf{mail_id}":
                return Response("not found", status=404)
            return Response(proof_pdf(code, int(mail_id)), mimetype="application/pdf")
        if not path.startswith("/api/"):
            return Response("not found", status=404)
        fields = dict(request.args) if request.method == "GET" else dict(request.form)
        with self._lock:
            self.calls.append((request.method, path[4:], {k: v for k, v in fields.items() if k != "token"}))
        date = fields.get("date", "")
        try:
            self._authenticate(fields, request.headers.get("signature"))
            result = self._route(request.method, path[4:].rstrip("/"), fields, dict(request.files))
        except _Refused as refused:
            body = json.dumps({"status": "ERROR", "slug": refused.slug, "message": refused.message})
            return Response(body, mimetype="application/json")
        plaintext = json.dumps({"status": "SUCCESS", "result": result}).encode()
        return Response(encrypt_response(self.private_key, date, plaintext), mimetype="text/plain")

    def _authenticate(self, fields: dict[str, str], signature: str | None) -> None:
        if not fields.get("token"):
            raise _Refused("token_missing", "The token is missing in your request")
        if fields["token"] != self.token:
            raise _Refused("token_invalid", "Your token is not valid")
        date = fields.get("date")
        if not date:
            raise _Refused("empty_date", "No date parameter found in your request")
        try:
            sent = datetime.strptime(date, DATE_FORMAT).replace(tzinfo=PARIS)
        except ValueError:
            raise _Refused("invalid_date", "Wrong date format (must be YYYY-MM-DD HH:mm:ss)") from None
        now = self.clock()
        if sent < now - timedelta(minutes=2):
            raise _Refused("expired_date", "Given datetime is older than current datetime")
        if sent > now + timedelta(minutes=10):
            raise _Refused("date_in_future", "Given datetime must be set between call submission and +10 minutes")
        if not signature:
            raise _Refused("empty_signature", "The signature header is missing")
        if signature != sign_date(self.private_key, date):
            # AR24 documents no slug for a wrong signature; this server names it plainly.
            raise _Refused("invalid_signature", "The signature does not match the date and private key")

    def _route(self, method: str, path: str, fields: dict[str, str], files: dict[str, FileStorage]) -> Any:
        handlers = {
            ("POST", "/user/auth_otp"): self._auth_otp,
            ("POST", "/attachment"): self._attachment,
            ("POST", "/mail"): self._send,
            ("GET", "/mail"): self._mail,
            ("GET", "/user/mail"): self._user_mails,
            ("GET", "/user"): self._user,
        }
        handler = handlers.get((method, path))
        if handler is None:
            raise _Refused("unknown_error", f"No route {method} {path}")
        return handler(fields, files)

    def _require_user(self, fields: dict[str, str]) -> None:
        if not fields.get("id_user"):
            raise _Refused("missing_user_id", "Please specify a valid user ID")
        if fields["id_user"] != self.user_id:
            raise _Refused("user_unavailable", "You tried to access a resource that is not related to your API")

    def _auth_otp(self, fields: dict[str, str], _files: dict[str, FileStorage]) -> Any:
        self._require_user(fields)
        if fields.get("otp") not in self.valid_otps:
            raise _Refused("authentication_otp_invalid", "Invalid otp code")
        otp_hash = hashlib.sha256(f"{fields['otp']}{len(self.otp_hashes)}".encode()).hexdigest()
        expires = self.clock() + timedelta(hours=1)
        self.otp_hashes[otp_hash] = expires
        return {"hash": otp_hash, "expiration_date": paris_date(expires)}

    def _attachment(self, fields: dict[str, str], files: dict[str, FileStorage]) -> Any:
        self._require_user(fields)
        upload = files.get("file")
        if upload is None:
            raise _Refused("attachment_missing_file", "You didn't fill the file parameter correctly")
        content = upload.read()
        if not content:
            raise _Refused("attachment_too_big", "File is empty (0B) or too big")
        file_id = str(next(self._file_ids))
        self.attachments[file_id] = (fields.get("file_name") or upload.filename or "", content)
        return {"file_id": file_id}

    def _send(self, fields: dict[str, str], _files: dict[str, FileStorage]) -> Any:
        self._require_user(fields)
        if not fields.get("to_email"):
            raise _Refused("missing_email", "Please specify an email address")
        if "@" not in fields["to_email"] or fields["to_email"].endswith(".invalid"):
            raise _Refused("invalid_email", "Recipient's email address is incorrect, the domain does not exist")
        if fields.get("eidas") in ("1", "true"):
            otp_hash = fields.get("auth_otp_hash")
            if not otp_hash and not fields.get("otp"):
                raise _Refused("authentication_missing", "Invalid eidas identification (ssl or otp)")
            if otp_hash and self.otp_hashes.get(otp_hash, datetime.min.replace(tzinfo=UTC)) < self.clock():
                raise _Refused("authentication_otp_hash_invalid", "OTP hash is required and is not correct")
        attachments = [v for k, v in sorted(fields.items()) if k.startswith("attachment[")]
        if any(a not in self.attachments for a in attachments):
            raise _Refused("attachment_not_exists", "At least one of the attachment ID's you provided doesn't exist")
        if not attachments and not fields.get("content"):
            raise _Refused(
                "error_no_content_no_attachment", "Empty mail ; content is empty and there are no attachments"
            )
        mail_id = next(self._ids)
        now = paris_date(self.clock())
        mail: dict[str, Any] = {
            "id": mail_id,
            "type": "lre",
            "status": "waiting",
            "creation": now,
            "date": now,
            "to_firstname": fields.get("to_firstname", ""),
            "to_lastname": fields.get("to_lastname", ""),
            "to_company": fields.get("to_company", ""),
            "to_email": fields["to_email"],
            "dest_statut": fields.get("dest_statut", ""),
            "id_sender": int(self.user_id),
            "ref_dossier": fields.get("ref_dossier", ""),
            "ref_client": fields.get("ref_client", ""),
            "is_eidas": fields.get("eidas") in ("1", "true"),
            "send_fail": False,
            "webhook": fields.get("webhook", ""),
            "attachments_details": [
                {
                    "id": int(a),
                    "name": self.attachments[a][0],
                    "hash_sha1": hashlib.sha1(self.attachments[a][1]).hexdigest(),
                }
                for a in attachments
            ],
        }
        for date_field, url_field in STEP_FIELDS.values():
            mail[date_field] = ""
            mail[url_field] = ""
        with self._lock:
            self.mails[mail_id] = mail
        if self.slow_send_seconds:
            time.sleep(self.slow_send_seconds)
        return dict(mail)

    def _mail(self, fields: dict[str, str], _files: dict[str, FileStorage]) -> Any:
        mail_id = fields.get("id", "")
        if not mail_id.isdigit() or int(mail_id) not in self.mails:
            raise _Refused("missing_erm_id", "Please provide a valid mail ID")
        return dict(self.mails[int(mail_id)])

    def _user(self, fields: dict[str, str], _files: dict[str, FileStorage]) -> Any:
        if fields.get("id_user") != self.user_id:
            raise _Refused("user_not_exist", "There is not a user with this address on AR24")
        return dict(self.user)

    def _user_mails(self, fields: dict[str, str], _files: dict[str, FileStorage]) -> Any:
        self._require_user(fields)
        mails = sorted(self.mails.values(), key=lambda m: m["id"], reverse=fields.get("sort", "DESC") == "DESC")
        start = int(fields.get("start") or 0)
        count = int(fields.get("max") or 10)
        return [dict(m) for m in mails[start : start + count]]
