"""Account, health, the consent register and provider callbacks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.common import bounded_instant, limit_arg, list_answer, page, parse_body, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.idempotency import idempotent
from connector.api.jsontypes import JsonDateTime
from connector.api.params import PageQuery, choice
from connector.api.registry import Answer, ListOf, documented
from connector.letters.lifecycle import schedule_poll
from connector.models import Consent, Letter
from connector.providers.base import FINAL_STATUSES, WebhookRejected

bp = Blueprint("core", __name__)

CONSENT_METHODS = ("written", "electronic_form", "email", "contract_clause", "other")


class Health(shapes.Shape):
    """The process is up."""

    status: Literal["ok"]


class ReadinessError(shapes.Shape):
    code: Literal["database_unreachable"]
    message: str


class Readiness(shapes.Shape):
    """Whether the bridge can serve: its database answers (``error`` says why not)."""

    status: Literal["ready", "unavailable"]
    error: ReadinessError | None = None


class CallbackReceived(shapes.Shape):
    received: bool


@bp.get("/healthz")
@documented("The process is up", security=[], answers={200: Health})
def healthz() -> Response:
    """The process is up."""
    return jsonify(Health.dump(status="ok"))


@bp.get("/readyz")
@documented("The database is reachable", security=[],
            answers={200: Readiness, 503: Answer("Not ready", {"application/json": Readiness})})
def readyz() -> tuple[Response, int]:
    """The database answers."""
    if services().db.ping():
        return jsonify(Readiness.dump(status="ready")), 200
    return jsonify(Readiness.dump(status="unavailable", error={
        "code": "database_unreachable", "message": "The database does not answer."})), 503


@bp.get("/v1/me")
@documented("The account behind the API key (connection test)", operation_id="getMe",
            answers={200: shapes.Account})
@require_api_key
def me() -> Response:
    """The account behind the API key (what Zapier, Make and n8n call to test a connection)."""
    name, _ = services().provider_settings(db_session(), g.account.id)
    return jsonify(shapes.Account.dump(
        id=g.account.id,
        object="account",
        name=g.account.name,
        provider=name,
        api_key={"id": g.api_key.id, "name": g.api_key.name, "prefix": g.api_key.prefix},
    ))


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    method: str = Field(description="how the consent was obtained", pattern="^(" + "|".join(CONSENT_METHODS) + ")$")
    obtained_at: JsonDateTime
    recorded_by: str = Field(min_length=1, max_length=200, description="who recorded it")
    note: str | None = Field(default=None, max_length=2000)
    proof: dict[str, str] | None = Field(default=None, description="{filename, content_base64}")


def consent_to_dict(consent: Consent) -> dict[str, Any]:
    """A register entry as the API shows it."""
    iso = shapes.iso
    return shapes.Consent.dump(**{
        "id": consent.id,
        "object": "consent",
        "email": consent.email,
        "first_name": consent.first_name,
        "last_name": consent.last_name,
        "method": consent.method,
        "obtained_at": iso(consent.obtained_at),
        "recorded_by": consent.recorded_by,
        "note": consent.note,
        "proof": (
            {"filename": consent.proof_filename, "sha256": consent.proof_sha256} if consent.proof_sha256 else None
        ),
        "status": "revoked" if consent.revoked_at else "active",
        "created_at": iso(consent.created_at),
        "revoked_at": iso(consent.revoked_at),
        "revoked_by": consent.revoked_by,
    })


ConsentStatusChoice = choice(("active", "revoked"))


class ConsentListQuery(PageQuery):
    email: str | None = None
    status: ConsentStatusChoice = None


class RevokeQuery(BaseModel):
    revoked_by: str | None = None


def check_past_datetime(value: datetime, field: str, now: datetime) -> None:
    """Refuse (422 naming ``field``) a date-time without a time zone, or in the future: a register
    entry says when something happened, and an ambiguous or impossible time proves nothing."""
    if value.tzinfo is None:
        raise ApiError(422, "invalid_request", f"{field} needs a time zone (e.g. 2026-11-27T10:00:00+01:00).", field)
    bounded_instant(value, field)  # year 1 with +14:00 cannot even be stored
    if value > now:
        raise ApiError(422, "invalid_request", f"{field} is in the future.", field)


@bp.post("/v1/consents")
@documented("Record a recipient's consent (CPCE art. L.100)", operation_id="recordConsent",
            body=ConsentIn, body_example=examples.CONSENT, answers={201: shapes.Consent})
@require_api_key
@idempotent
def record_consent() -> tuple[Response, int]:
    """Record a recipient's prior consent to receive registered e-mail (CPCE art. L.100)."""
    data: ConsentIn = parse_body(ConsentIn)
    svc = services()
    check_past_datetime(data.obtained_at, "obtained_at", svc.clock())
    consent = Consent(
        account_id=g.account.id,
        email=data.email.lower(),
        first_name=data.first_name,
        last_name=data.last_name,
        method=data.method,
        obtained_at=data.obtained_at,
        recorded_by=data.recorded_by,
        note=data.note,
    )
    if data.proof is not None:
        try:
            content = base64.b64decode(data.proof.get("content_base64", ""), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_base64", "proof.content_base64 is not valid base64.",
                           "proof.content_base64") from None
        if not content or len(content) > svc.settings.max_document_bytes:
            raise ApiError(422, "invalid_request", "The proof document is empty or too large.", "proof")
        consent.proof_filename = data.proof.get("filename") or "consent-proof"
        consent.proof_sha256 = hashlib.sha256(content).hexdigest()
        consent.proof_storage_key = svc.blobs.put(content)
    session = db_session()
    session.add(consent)
    session.flush()
    return jsonify(consent_to_dict(consent)), 201


@bp.get("/v1/consents")
@documented("The consent register", operation_id="listConsents", query=ConsentListQuery,
            answers={200: ListOf(shapes.Consent)})
@require_api_key
def list_consents() -> Response:
    query = select(Consent).where(Consent.account_id == g.account.id)
    if request.args.get("email"):
        query = query.where(Consent.email == request.args["email"].strip().lower())
    status = request.args.get("status")
    if status == "active":
        query = query.where(Consent.revoked_at.is_(None))
    elif status == "revoked":
        query = query.where(Consent.revoked_at.is_not(None))
    elif status:
        raise ApiError(400, "invalid_status", "status must be active or revoked.", "status")
    rows, next_cursor = page(query, Consent.created_at, Consent.id, limit_arg())
    return list_answer([consent_to_dict(c) for c in rows], next_cursor)


@bp.delete("/v1/consents/<consent_id>")
@documented("Revoke a consent (kept, marked revoked)", operation_id="revokeConsent",
            query=RevokeQuery, answers={200: shapes.Consent})
@require_api_key
def revoke_consent(consent_id: str) -> Response:
    """Revoke a consent (kept in the register with who and when; never deleted)."""
    session = db_session()
    consent = session.scalar(select(Consent).where(Consent.id == consent_id, Consent.account_id == g.account.id))
    if consent is None:
        raise ApiError(404, "consent_not_found", "No consent with this id in your account.", "id")
    if consent.revoked_at is None:
        consent.revoked_at = services().clock()
        consent.revoked_by = (request.args.get("revoked_by") or f"api key {g.api_key.prefix}…")[:200]
    session.commit()
    return jsonify(consent_to_dict(consent))


@bp.post("/callbacks/<provider>/<token>")
@bp.get("/callbacks/<provider>/<token>")
@documented("Provider callback (a hint; the letter is re-read at the provider)", security=[],
            answers={200: CallbackReceived}, errors={401: None, 403: None, 404: None})
def provider_callback(provider: str, token: str) -> tuple[Response, int]:
    """A provider says something happened to a letter. Only a hint: the worker re-reads the
    letter at the provider (signed call) before any event is recorded."""
    session = db_session()
    letter = session.scalar(select(Letter).where(Letter.callback_token == token, Letter.provider == provider))
    if letter is None:
        raise ApiError(404, "unknown_callback", "This callback address is not known.")
    svc = services()
    adapter = svc.provider_for_account(session, letter.account_id)
    try:
        # The caller's address, for providers with an IP allow-list (AR24); never the client's own header.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "x-lre-remote-addr"}
        headers["X-Lre-Remote-Addr"] = request.remote_addr or ""
        adapter.parse_callback(headers, request.args.to_dict(), request.get_data())
    except WebhookRejected as exc:
        raise ApiError(exc.status, "callback_rejected", str(exc)) from None
    if letter.provider_letter_id and letter.status not in FINAL_STATUSES:
        schedule_poll(session, letter, svc.clock())
        session.commit()
    return jsonify(CallbackReceived.dump(received=True)), 200
