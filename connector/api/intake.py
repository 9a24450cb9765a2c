"""The signed intake endpoint: the account's own systems (CRM, ERP, form tool) send a letter by webhook.

``POST /v1/intake/<account_id>`` takes the same JSON as ``POST /v1/letters``, authenticated not
by an API key but by a signature with the account's intake secret: Standard Webhooks headers, or
``X-Signature: sha256=<hex HMAC of the raw body>``. The raw bytes are verified before anything
is parsed; a message id (or, for ``X-Signature``, the body hash) is accepted once; with no
intake secret configured every request is refused. The secret is created or rotated with
``POST /v1/account/intake-secret`` (API key) and shown once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, Field

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.bodies import letter_json, request_body
from connector.api.common import parse_body, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.hooks import RotationIn
from connector.api.registry import Body, documented, json_answer
from connector.delivery.hook_secrets import (
    keys_from,
    new_secret_list,
    previous_secret_expiry,
    rotate_secret_list,
)
from connector.delivery.inbound import ReplayedMessage, already_received, remember_message
from connector.letters.requests import LetterIn, parse_letter
from connector.letters.service import accept_letter
from connector.lib import signing
from connector.models import Account

bp = Blueprint("intake", __name__)

_NOT_ENABLED = "Signed intake is not enabled for this account: create a secret with POST /v1/account/intake-secret."


def intake_source(account_id: str) -> str:
    """The replay-protection namespace of one account's intake."""
    return f"intake:{account_id}"


def _signature_error(exc: signing.SignatureError) -> ApiError:
    if isinstance(exc, signing.MalformedHeader):
        return ApiError(400, "malformed_signature", f"Malformed signature header: {exc}.")
    code = {
        signing.MissingHeader: "missing_signature",
        signing.TimestampOutOfRange: "stale_signature",
        signing.NoMatchingSignature: "invalid_signature",
    }.get(type(exc), "invalid_signature")
    return ApiError(401, code, f"Signature refused: {exc}.")


_BASE64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)"
_V1_SIGNATURES = f"^v1,{_BASE64}( v1,{_BASE64}){{0,15}}$"
_HEX_SIGNATURES = "^sha256=[0-9a-fA-F]{64}(,sha256=[0-9a-fA-F]{64}){0,15}$"


class SignatureHeaders(BaseModel):
    """The header shapes connector/lib/signing.py reads; a well-formed but wrong signature is a 401."""

    webhook_id: str | None = Field(None, alias="webhook-id", pattern="^[\\x21-\\x7e]{1,255}$")
    webhook_timestamp: str | None = Field(None, alias="webhook-timestamp", pattern="^[0-9]{1,12}$",
                                          description="seconds since 1970")
    webhook_signature: str | None = Field(None, alias="webhook-signature", pattern=_V1_SIGNATURES)
    x_signature: str | None = Field(None, alias="X-Signature", pattern=_HEX_SIGNATURES)


class IntakeSecret(shapes.Shape):
    object: Literal["intake_secret"]
    secret: str = Field(description="`whsec_…`, shown once.")
    intake_url: str
    previous_secret_expires_at: shapes.DateTime | None = Field(json_schema_extra={"format": "date-time"})
    schemes: list[str]


@bp.post("/v1/intake/<account_id>")
@documented(
    "Send a letter from your own system with a signed webhook", tags=["Webhooks"], security=[],
    description="Same body as POST /v1/letters. Authenticate with the account's intake secret: Standard "
                "Webhooks headers (webhook-id, webhook-timestamp within 5 minutes, webhook-signature) or "
                "X-Signature: sha256=<hex HMAC-SHA256 of the raw body>. Each webhook-id (X-Signature: each "
                "body) is accepted once.",
    headers=SignatureHeaders, body=LetterIn, body_example=examples.LETTER,
    answers={201: json_answer(shapes.Letter, "The letter is accepted and queued")},
    errors={400: "Refused", 401: "Refused", 409: "Refused"})
def intake_letter(account_id: str) -> tuple[Response, int, dict[str, str]]:
    """Create a letter from a signed request (same body as ``POST /v1/letters``)."""
    svc = services()
    session = db_session()
    now = svc.clock()
    # The account and the declared size are checked before a byte of the body is read: an
    # anonymous sender cannot make the bridge receive tens of megabytes for nothing.
    account = session.get(Account, account_id) if len(account_id) <= 64 and "\x00" not in account_id else None
    keys = keys_from(svc.encryptor, account.intake_secret_encrypted, now) if account is not None else []
    session.rollback()  # hold no database lock while verifying and fetching documents
    if not keys:
        # Unknown account and account without a secret answer alike: never fail open, reveal nothing.
        raise ApiError(401, "intake_not_enabled", _NOT_ENABLED)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if (request.content_length or 0) > limit:  # a chunked body is cut at the same limit while read
        raise ApiError(413, "payload_too_large", f"The request body is larger than {limit} bytes.")
    try:
        # Headers first (missing, malformed, stale: refused before a byte of the body is read),
        # then the body, verified piece by piece as it is spooled: never held whole in memory.
        verifier = signing.start_verify_either(keys, request.headers, now=now.timestamp())
        request_body(feed=verifier.update)
        message_id = verifier.finish()
    except signing.SignatureError as exc:
        raise _signature_error(exc) from None
    source = intake_source(account_id)
    if already_received(session, source, message_id):
        raise _replayed()
    session.rollback()
    # Parsed from the verified copy; long content_base64 strings are decoded to files as read.
    raw, spooled = letter_json(any_content_type=True)
    if raw is None:  # not JSON at all
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    payload = parse_letter(raw)
    _, shown = accept_letter(svc, session, account_id, payload, [], spooled)
    try:
        # The authoritative check, in the transaction that creates the letter: both or neither.
        remember_message(session, source, message_id, now)
    except ReplayedMessage:
        raise _replayed() from None
    session.commit()
    return jsonify(shown), 201, {"Location": shown["links"]["self"]}


def _replayed() -> ApiError:
    return ApiError(409, "replayed_message", "This message was already received; it is not processed twice.")


@bp.post("/v1/account/intake-secret")
@documented("Create or rotate the intake secret", tags=["Webhooks"],
            body=Body({"application/json": RotationIn}, required=False, example=examples.SECRET_ROTATION),
            answers={201: json_answer(IntakeSecret, "Created"),
                     200: json_answer(IntakeSecret, "Rotated; the previous secret stays valid for the grace period")})
@require_api_key
def create_intake_secret() -> tuple[Response, int]:
    """Create (or rotate) the account's intake secret; the answer shows it, once."""
    options: RotationIn = parse_body(RotationIn, optional=True)
    svc = services()
    now = svc.clock()
    session = db_session()
    account = session.get(Account, g.account.id, with_for_update=True)
    assert account is not None  # the API key was just checked
    if account.intake_secret_encrypted:
        entries, secret = rotate_secret_list(
            svc.encryptor.decrypt_json(account.intake_secret_encrypted),
            now,
            timedelta(seconds=options.grace_period_seconds),
        )
        status = 200
    else:
        entries, secret = new_secret_list(now)
        status = 201
    account.intake_secret_encrypted = svc.encryptor.encrypt_json(entries)
    session.commit()
    return jsonify(
        IntakeSecret.dump(**{
            "object": "intake_secret",
            "secret": secret,
            "intake_url": f"{svc.settings.public_url}/v1/intake/{account.id}",
            "previous_secret_expires_at": previous_secret_expiry(entries, now),
            "schemes": ["standard-webhooks", "x-signature-sha256"],
        })
    ), status
