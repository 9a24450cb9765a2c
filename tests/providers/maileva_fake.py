"""A stateful Maileva LREQ stand-in on top of `responses`: sendings, documents, recipients,
submission, listing, recipient status and proofs, shaped like Maileva's OpenAPI schemas."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

API = "https://api.sandbox.maileva.net"
LREQ = f"{API}/electronic_qualified_registered_mail/v1"
AUTH = "https://connexion.sandbox.maileva.net/auth/realms/services/protocol/openid-connect/token"
SETTINGS = {
    "base_url": API,
    "auth_url": AUTH,
    "client_id": "bridge-client",
    "client_secret": "s3cr3t",
    "username": "gestion@dupont-immo.example",
    "password": "p4ssw0rd",
    "sender_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
}
_ID = r"([0-9a-f-]{36})"


def proof_pdf(kind: str, sending_id: str) -> bytes:
    return f"%PDF-1.4\n% Maileva test {kind} proof {sending_id}\n%%EOF\n".encode()


class MailevaFake:
    """Register on an active ``responses`` mock; ``complete`` plays the recipient's answer."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.sendings: dict[str, dict[str, Any]] = {}
        self.recipients: dict[str, dict[str, Any]] = {}
        self.submissions: list[str] = []
        # Statuses the next submit calls answer instead of 202 (a 503 now, a 403 for good…).
        self.submit_failures: list[int] = []
        self.deleted: list[str] = []
        # Set: Maileva's checks reject the next submitted sending, before any deposit, with this cause
        # in the recipient's status_detail.
        self.reject_with: str | None = None
        self._tokens = itertools.count(1)
        mock.add_callback(responses.POST, AUTH, callback=self._token)
        mock.add_callback(responses.POST, f"{LREQ}/sendings", callback=self._create)
        mock.add_callback(responses.GET, re.compile(rf"{re.escape(LREQ)}/sendings(\?.*)?$"), callback=self._list)
        mock.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}/documents"),
            callback=self._document,
        )
        mock.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}/recipients$"),
            callback=self._recipient,
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}/recipients$"),
            callback=self._recipients,
        )
        mock.add_callback(
            responses.POST, re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}/submit"), callback=self._submit
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}/recipients/{_ID}/download_(\w+)_proof"),
            callback=self._proof,
        )
        mock.add_callback(responses.DELETE, re.compile(rf"{re.escape(LREQ)}/sendings/{_ID}$"), callback=self._delete)

    def complete(self, sending_id: str, status: str = "ACCEPTED") -> None:
        proof_type = {
            "ACCEPTED": "ACKNOWLEDGMENT_OF_RECEIPT",
            "REFUSED": "REFUSAL_PROOF",
            "NOT_CLAIMED": "NOT_CLAIMED_PROOF",
        }[status]
        recipient = self.recipients[sending_id]
        recipient.update(
            status=status,
            status_date="2026-11-29T17:22:05.000Z",
            delivery_proof={
                "id": str(uuid.uuid4()),
                "type": proof_type,
                "creation_date": "2026-11-29T17:22:05.000Z",
            },
        )


    def _delete(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sending_id = (request.url or "").split("/sendings/")[1].split("/")[0].split("?")[0]
        sending = self.sendings.get(sending_id)
        if sending is None:
            return self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "Envoi introuvable"}]})
        if sending["status"] != "DRAFT":  # the specification: only a draft can be deleted
            return self._json(409, {"errors": [{"code": "CONFLICT", "message": "Envoi déjà soumis"}]})
        del self.sendings[sending_id]
        self.recipients.pop(sending_id, None)
        self.deleted.append(sending_id)
        return 204, {}, ""

    @staticmethod
    def _json(status: int, body: Any) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _authorised(self, request: requests.PreparedRequest) -> bool:
        return str(request.headers.get("Authorization", "")).startswith("Bearer access-")

    def _token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        n = next(self._tokens)
        return self._json(
            200,
            {
                "access_token": f"access-{n}",
                "expires_in": 300,
                "refresh_token": f"refresh-{n}",
                "refresh_expires_in": 1800,
                "token_type": "bearer",
            },
        )

    def _create(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if not self._authorised(request):
            return 401, {}, ""
        body = json.loads(request.body or b"{}")
        sending = {
            **body,
            "id": str(uuid.uuid4()),
            "status": "DRAFT",
            "creation_date": "2026-11-27T08:00:00.000Z",
        }
        self.sendings[sending["id"]] = sending
        return self._json(201, sending)

    def _list(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        found = [
            s for s in self.sendings.values() if "custom_id" not in query or s.get("custom_id") == query["custom_id"]
        ]
        return self._json(200, {"sendings": found, "paging": {"total_results": len(found)}})

    def _document(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return self._json(201, {"id": str(uuid.uuid4()), "name": "document.pdf", "size": len(request.body or b"")})

    def _recipient(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sending_id = (request.url or "").split("/sendings/")[1].split("/")[0]
        recipient = {**json.loads(request.body or b"{}"), "id": str(uuid.uuid4()), "status": "DRAFT"}
        self.recipients[sending_id] = recipient
        return self._json(201, recipient)

    def _submit(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sending_id = (request.url or "").split("/sendings/")[1].split("/")[0]
        if self.submit_failures:
            status = self.submit_failures.pop(0)
            return self._json(status, {"errors": [{"code": "ERROR", "message": f"HTTP {status}"}]})
        self.submissions.append(sending_id)
        if self.reject_with:
            self.sendings[sending_id]["status"] = "ACCEPTED"
            self.recipients[sending_id].update(status="REJECTED", status_date="2026-11-27T08:01:12.000Z",
                                               status_detail=self.reject_with)
            return 202, {}, ""
        self.sendings[sending_id]["status"] = "ACCEPTED"
        self.recipients[sending_id].update(
            status="PROCESSED",
            status_date="2026-11-27T08:01:12.000Z",
            deposit_proof={
                "id": str(uuid.uuid4()),
                "type": "DEPOSIT_PROOF",
                "creation_date": "2026-11-27T08:01:12.000Z",
            },
        )
        return 202, {}, ""

    def _recipients(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sending_id = (request.url or "").split("/sendings/")[1].split("/")[0]
        recipient = self.recipients.get(sending_id)
        return self._json(200, {"recipients": [recipient] if recipient else [], "paging": {"total_results": 1}})

    def _proof(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        sending_id = (request.url or "").split("/sendings/")[1].split("/")[0]
        kind = (request.url or "").rsplit("download_", 1)[1].removesuffix("_proof")
        return 200, {"Content-Type": "application/pdf"}, proof_pdf(kind, sending_id)
