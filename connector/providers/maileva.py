"""Maileva LREQ (``electronic_qualified_registered_mail`` v1) qualified electronic registered letters.

From Maileva's published OpenAPI specifications (sources in docs/providers.md):

* OAuth2 *password* grant on the ``connexion`` host (client_credentials is not implemented by
  Maileva), bearer JWT, ``refresh_token`` grant to renew;
* a letter is a *sending*: ``POST /sendings`` (DRAFT) → ``POST /sendings/{id}/documents``
  (multipart ``document`` + ``name``) → ``POST /sendings/{id}/recipients`` →
  ``POST /sendings/{id}/submit`` (202);
* the recipient's ``status`` and its ``deposit_proof`` / ``delivery_proof`` give the lifecycle;
  LREQ has no webhook resource type in the notification centre, so the bridge polls;
* errors: ``{"errors": [{"code", "message"}]}`` with HTTP 400/401/403/404.

The sender must be authenticated at Maileva before a qualified send: by a 6-digit OTP
(``electronic_mail_emitter`` ``POST /senders/{id}/authenticate_by_otp``, valid one hour) or by
certificate (valid 30 days). ``prepare_submission`` does the OTP exchange when a code is given.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from connector.providers import transport
from connector.providers.base import (
    FINAL_STATUSES,
    PROOF_KIND_BY_STATUS,
    LetterStatus,
    OutgoingLetter,
    ProofRef,
    ProviderContext,
    ProviderError,
    ProviderEvent,
    ProviderState,
    SubmitResult,
    WebhookRejected,
)

LREQ_PATH = "/electronic_qualified_registered_mail/v1"
EMITTER_PATH = "/electronic_mail_emitter/v1"
DEFAULT_TIMEOUT = 60.0
# Field limits from the SendingCreation and RecipientCreation schemas.
MAX_CUSTOM_ID = 38
MAX_NAME = 256
MAX_CUSTOM_DATA = 255
MAX_MESSAGE = 450
MAX_PERSON_NAME = 50
MAX_COMPANY = 38
# The recipient e-mail pattern of the RecipientCreation schema, checked before calling Maileva.
EMAIL_PATTERN = re.compile(r"^[\w]{1,}[\w.+-]{0,}@[\w-]{2,}([.][a-zA-Z]{2,}|[.][\w-]{2,}[.][a-zA-Z]{2,})+$")
_CHECK_SETTINGS = "Check the Maileva settings of this account (PUT /v1/account/provider)."
_OTP_HELP = (
    "Type a fresh 6-digit code from the sender's Maileva/AR24 OTP key (authenticator app, or "
    "https://otp-client.ar24.fr/) in sender_otp and send the letter again."
)

log = logging.getLogger(__name__)

# Proof type (RecipientProofResource.type) → the status it proves.
PROOF_STATUS: dict[str, LetterStatus] = {
    "DEPOSIT_PROOF": LetterStatus.DEPOSITED,
    "ACKNOWLEDGMENT_OF_RECEIPT": LetterStatus.ACCEPTED,
    "REFUSAL_PROOF": LetterStatus.REFUSED,
    "NOT_CLAIMED_PROOF": LetterStatus.NEGLECTED,
}
# Recipient status → our status when the status is final. Statuses not listed here
# (DRAFT, PENDING, PROCESSED, TO_UPDATE) are steps on the way: no event of their own.
RECIPIENT_STATUS: dict[str, LetterStatus] = {
    "ACCEPTED": LetterStatus.ACCEPTED,
    "REFUSED": LetterStatus.REFUSED,
    "NOT_CLAIMED": LetterStatus.NEGLECTED,
    # ERROR: the notification could not reach the recipient (Maileva's closest to AR24's bounce);
    # Maileva issues no proof for it.
    "ERROR": LetterStatus.BOUNCED,
    # REJECTED (by Maileva's checks, cause in status_detail) and CANCELED end the letter unsent.
    "REJECTED": LetterStatus.FAILED,
    "CANCELED": LetterStatus.FAILED,
}
IN_PROGRESS = frozenset({"DRAFT", "PENDING", "PROCESSED", "TO_UPDATE"})
# Why a recipient ended unsent, in the user's words (Maileva's cause is in status_detail).
FAILURE_MESSAGES: dict[str, str] = {
    "REJECTED": "Maileva rejected the letter after its checks",
    "CANCELED": "The sending was cancelled at Maileva",
}
# Statuses whose event must carry the delivery proof (so it is emitted once, with its proof).
NEEDS_DELIVERY_PROOF = frozenset({LetterStatus.ACCEPTED, LetterStatus.REFUSED, LetterStatus.NEGLECTED})


def parse_iso(value: Any) -> datetime | None:
    """A Maileva date-time (ISO 8601, ``Z`` suffix) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- OAuth2 token cache (per settings, shared by adapter instances in the process) ------------


@dataclass(slots=True)
class _Token:
    access_token: str
    expires_at: float
    refresh_token: str | None
    refresh_expires_at: float


_TOKENS: dict[str, _Token] = {}
_TOKENS_LOCK = threading.Lock()
# Renew a little before expiry so a token does not lapse mid-request.
_EXPIRY_MARGIN = 30.0


def _token_cache_key(settings: Mapping[str, Any]) -> str:
    material = "\x00".join(
        str(settings.get(k) or "") for k in ("auth_url", "client_id", "client_secret", "username", "password")
    )
    return hashlib.sha256(material.encode()).hexdigest()


def clear_token_cache() -> None:
    """Forget every cached token (tests; credentials changed)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


# --- Errors ----------------------------------------------------------------------------------


def _error_items(response: requests.Response) -> list[dict[str, str]]:
    try:
        payload = response.json()
    except ValueError:
        return []
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        return [
            {"code": str(e.get("code") or ""), "message": str(e.get("message") or "")}
            for e in payload["errors"]
            if isinstance(e, dict)
        ]
    return []


def error_for(response: requests.Response, *, action: str, creates: bool = False) -> ProviderError:
    """The bridge error for a Maileva error answer (``ErrorsDto`` body, by HTTP status)."""
    status = response.status_code
    items = _error_items(response)
    detail = "; ".join(f"{i['message'] or i['code']}" for i in items if i["message"] or i["code"])
    provider_code = items[0]["code"] if items and items[0]["code"] else f"http_{status}"
    suffix = f": {detail}" if detail else "."
    if status == 400:
        return ProviderError(
            "provider_rejected",
            f"Maileva refused to {action}{suffix}",
            permanent=True,
            provider_code=provider_code,
        )
    if status == 401:
        return ProviderError(
            "provider_auth_failed",
            f"Maileva refused the credentials. {_CHECK_SETTINGS}",
            permanent=True,
            provider_code=provider_code,
        )
    if status == 403:
        # Forbidden on a sending: the account may not use this sender, or the sender is not
        # authenticated for qualified sends (OTP hour elapsed, certificate missing).
        return ProviderError(
            "sender_not_authorised",
            f"Maileva did not allow this sender to {action}{suffix} Check sender_id; if the sender "
            "authenticates by OTP, " + _OTP_HELP,
            permanent=True,
            field="sender_otp",
            provider_code=provider_code,
        )
    if status == 404:
        return ProviderError(
            "provider_not_found",
            f"Maileva does not know this item ({action}){suffix}",
            permanent=True,
            provider_code=provider_code,
        )
    if transport.is_transient_status(status):
        return ProviderError(
            "provider_unavailable",
            f"Maileva is unavailable (HTTP {status}); the bridge will try again.",
            permanent=False,
            retry_after=transport.retry_after(response),
            provider_code=provider_code,
            ambiguous=creates and status >= 500,
        )
    return ProviderError(
        "provider_error",
        f"Maileva answered HTTP {status} to {action}{suffix}",
        permanent=True,
        provider_code=provider_code,
    )


# --- Lifecycle -------------------------------------------------------------------------------


def events_from_recipient(sending_id: str, recipient: Mapping[str, Any], now: datetime) -> tuple[ProviderEvent, ...]:
    """The normalised events a Maileva recipient shows, oldest first."""
    events: list[ProviderEvent] = []
    recipient_id = str(recipient.get("id") or "")
    raw_base = {k: recipient.get(k) for k in ("id", "status", "status_detail", "status_date") if k in recipient}
    deposit = recipient.get("deposit_proof")
    if isinstance(deposit, dict) and deposit.get("id"):
        events.append(
            ProviderEvent(
                status=LetterStatus.DEPOSITED,
                occurred_at=parse_iso(deposit.get("creation_date")) or now,
                provider_event_id=f"{sending_id}:{LetterStatus.DEPOSITED.value}",
                raw={**raw_base, "deposit_proof": deposit},
                proof=ProofRef(
                    kind=PROOF_KIND_BY_STATUS[LetterStatus.DEPOSITED],
                    url=f"{LREQ_PATH}/sendings/{sending_id}/recipients/{recipient_id}/download_deposit_proof",
                    filename=f"maileva-{sending_id}-deposit.pdf",
                ),
            )
        )
    status_name = str(recipient.get("status") or "")
    status = RECIPIENT_STATUS.get(status_name)
    delivery = recipient.get("delivery_proof")
    if isinstance(delivery, dict) and delivery.get("type") in PROOF_STATUS:
        # The proof type is authoritative for what happened (acknowledgement, refusal, non-claim).
        status = PROOF_STATUS[str(delivery["type"])]
    if status is None:
        if status_name and status_name not in IN_PROGRESS:
            # A status Maileva adds later: recorded, never a crash.
            events.append(
                ProviderEvent(
                    status="unknown",
                    occurred_at=parse_iso(recipient.get("status_date")) or now,
                    provider_event_id=f"{sending_id}:unknown:{status_name}",
                    raw=raw_base,
                )
            )
        return tuple(events)
    proof: ProofRef | None = None
    if status in NEEDS_DELIVERY_PROOF:
        if not (isinstance(delivery, dict) and delivery.get("id")):
            return tuple(events)  # the outcome is known but its proof not yet issued: wait for it
        proof = ProofRef(
            kind=PROOF_KIND_BY_STATUS[status],
            url=f"{LREQ_PATH}/sendings/{sending_id}/recipients/{recipient_id}/download_delivery_proof",
            filename=f"maileva-{sending_id}-{PROOF_KIND_BY_STATUS[status]}.pdf",
        )
    occurred = (parse_iso(delivery.get("creation_date")) if isinstance(delivery, dict) else None) or parse_iso(
        recipient.get("status_date")
    )
    events.append(
        ProviderEvent(
            status=status,
            occurred_at=occurred or now,
            provider_event_id=f"{sending_id}:{status.value}",
            raw={**raw_base, "delivery_proof": delivery} if delivery else raw_base,
            proof=proof,
            failure=_failure(status_name, recipient.get("status_detail")) if status == LetterStatus.FAILED else None,
        )
    )
    return tuple(events)


def _failure(status_name: str, detail: Any) -> tuple[str, str]:
    """``failure.code`` and ``failure.message`` of a recipient Maileva ended unsent."""
    cause = str(detail).strip() if detail not in (None, "") else ""
    code = "maileva_" + (re.sub(r"[^a-z0-9]+", "_", cause.lower()).strip("_")[:60] or status_name.lower())
    message = FAILURE_MESSAGES.get(status_name, f"Maileva ended the letter ({status_name})")
    return code, f"{message}: {cause}." if cause else f"{message} (no cause given)."


# --- The adapter -------------------------------------------------------------------------------


class MailevaProvider:
    """Maileva LREQ behind the bridge's Provider Protocol (``connector.providers.base.Provider``)."""

    name: ClassVar[str] = "maileva"
    display_name: ClassVar[str] = "Maileva LREQ"
    # LREQ has no resource type in Maileva's notification centre: the bridge polls.
    supports_webhooks: ClassVar[bool] = False
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "base_url",
        "auth_url",
        "client_id",
        "client_secret",
        "username",
        "password",
        "sender_id",
    )
    SECRET_SETTINGS: ClassVar[tuple[str, ...]] = ("client_secret", "password")
    OPTIONAL_SETTINGS: ClassVar[tuple[str, ...]] = ("timeout",)

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        settings = context.settings
        base = str(settings.get("base_url") or "").rstrip("/")
        # Accept the API root or the LREQ base URL itself.
        self.base_url = base[: -len(LREQ_PATH)] if base.endswith(LREQ_PATH) else base
        self.auth_url = str(settings.get("auth_url") or "")
        self.sender_id = str(settings.get("sender_id") or "")
        self.timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT)
        self._cache_key = _token_cache_key(settings)

    # -- OAuth2 ---------------------------------------------------------------------------

    def _token_request(self, data: Mapping[str, str]) -> requests.Response:
        settings = self.context.settings
        form = {**data, "client_id": str(settings.get("client_id") or "")}
        form["client_secret"] = str(settings.get("client_secret") or "")
        return transport.call(
            self.context, "POST", self.auth_url, provider="Maileva's sign-in service", timeout=self.timeout, data=form
        )

    def _access_token(self, *, force: bool = False) -> str:
        now = self.context.now().timestamp()
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._cache_key)
        if cached and not force and cached.expires_at - _EXPIRY_MARGIN > now:
            return cached.access_token
        response: requests.Response | None = None
        # A token the API refused (force) is not refreshed: sign in again from scratch.
        if not force and cached and cached.refresh_token and cached.refresh_expires_at - _EXPIRY_MARGIN > now:
            response = self._token_request({"grant_type": "refresh_token", "refresh_token": cached.refresh_token})
            if response.status_code != 200:
                response = None  # refresh token revoked or expired: sign in again
        if response is None:
            settings = self.context.settings
            response = self._token_request(
                {
                    "grant_type": "password",
                    "username": str(settings.get("username") or ""),
                    "password": str(settings.get("password") or ""),
                }
            )
        if response.status_code != 200:
            if response.status_code >= 500 or response.status_code == 429:
                raise ProviderError(
                    "provider_unavailable", "Maileva's sign-in service is unavailable.", permanent=False
                )
            try:
                reason = str(response.json().get("error") or "")
            except (ValueError, AttributeError):
                reason = ""
            raise ProviderError(
                "provider_auth_failed",
                f"Maileva refused to sign in ({reason or response.status_code}): check client_id, "
                f"client_secret, username and password. {_CHECK_SETTINGS}",
                permanent=True,
                provider_code=reason or None,
            )
        payload = response.json()
        token = _Token(
            access_token=str(payload["access_token"]),
            expires_at=now + float(payload.get("expires_in") or 60),
            refresh_token=payload.get("refresh_token"),
            refresh_expires_at=now + float(payload.get("refresh_expires_in") or 0),
        )
        with _TOKENS_LOCK:
            _TOKENS[self._cache_key] = token
        return token.access_token

    # -- transport --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        creates: bool = False,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """One authenticated call; on 401 the token is renewed once."""
        if not (self.base_url and self.auth_url):
            raise ProviderError(
                "provider_misconfigured",
                f"The Maileva settings are incomplete. {_CHECK_SETTINGS}",
                permanent=True,
            )
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        extra_headers = kwargs.pop("headers", {})
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {self._access_token(force=attempt == 2)}",
                "Accept": "application/json",
            }
            headers.update(extra_headers)
            response = transport.call(
                self.context,
                method,
                url,
                provider="Maileva",
                timeout=self.timeout,
                creates=creates,
                headers=headers,
                **kwargs,
            )
            if response.status_code == 401 and attempt == 1:
                continue
            if response.status_code in expect:
                return response
            raise error_for(response, action=action, creates=creates)
        raise AssertionError("unreachable")

    # -- Provider Protocol -----------------------------------------------------------------

    def prepare_submission(self, sender_otp: str | None) -> dict[str, Any]:
        """Authenticate the sender for one hour with their 6-digit OTP, when one is given.

        Without a code nothing is checked here: the sender may be authenticated by certificate
        (30 days). Maileva then refuses the submission if the sender is not authenticated.
        """
        otp = (sender_otp or "").strip()
        if not otp:
            return {}
        if not transport.OTP_PATTERN.fullmatch(otp):
            raise ProviderError(
                "sender_otp_invalid",
                "The one-time code must be 6 digits. " + _OTP_HELP,
                permanent=True,
                field="sender_otp",
            )
        try:
            response = self._request(
                "POST",
                f"{EMITTER_PATH}/senders/{self.sender_id}/authenticate_by_otp",
                params={"otp_code": otp},
                action="authenticate the sender",
                expect=(200, 201, 204),
            )
        except ProviderError as exc:
            if exc.code != "provider_rejected":
                raise
            # 400 on this route: the code is wrong or already used.
            raise ProviderError(
                "sender_otp_invalid",
                f"Maileva refused the sender's one-time code ({exc.message}). " + _OTP_HELP,
                permanent=True,
                field="sender_otp",
                provider_code=exc.provider_code,
            ) from exc
        try:
            expires = parse_iso(response.json().get("expiration_date"))
        except (ValueError, AttributeError):
            expires = None
        return {"sender_authenticated_until": expires.isoformat()} if expires else {"sender_authenticated": True}

    def check_letter(self, letter: OutgoingLetter) -> None:
        """Maileva's limits on names, company and message, checked before the letter is accepted."""
        recipient = letter.recipient
        problems: list[tuple[str, str, str]] = []
        if not EMAIL_PATTERN.match(recipient.email or ""):
            problems.append(("invalid_email", "recipient.email", "Maileva does not accept this e-mail address."))
        for field, value in (("first_name", recipient.first_name), ("last_name", recipient.last_name)):
            if not value:
                problems.append(
                    (
                        "invalid_recipient",
                        f"recipient.{field}",
                        f"Maileva needs the recipient's {field.replace('_', ' ')}.",
                    )
                )
            elif len(value) > MAX_PERSON_NAME:
                problems.append(
                    (
                        "invalid_recipient",
                        f"recipient.{field}",
                        f"Maileva accepts at most {MAX_PERSON_NAME} characters.",
                    )
                )
        if recipient.company and len(recipient.company) > MAX_COMPANY:
            problems.append(
                (
                    "invalid_recipient",
                    "recipient.company",
                    f"Maileva accepts at most {MAX_COMPANY} characters.",
                )
            )
        if letter.message and len(letter.message) > MAX_MESSAGE:
            problems.append(("message_too_long", "message", f"Maileva accepts at most {MAX_MESSAGE} characters."))
        if len(letter.id) > MAX_CUSTOM_ID:
            problems.append(("provider_error", "id", "The letter id is too long for Maileva's custom_id."))
        if problems:
            code, field, message = problems[0]
            raise ProviderError(code, message, permanent=True, field=field)

    def submit(self, letter: OutgoingLetter) -> SubmitResult:
        """Create the sending (``custom_id`` = our letter id), add documents and the recipient,
        then submit it. A draft left by a failed step is deleted (best effort)."""
        self.check_letter(letter)
        until = parse_iso(letter.submit_context.get("sender_authenticated_until"))
        if until is not None and until <= self.context.now():
            raise ProviderError(
                "sender_otp_expired",
                "The sender's Maileva identification lasts one hour and expired before the letter could "
                "be sent. " + _OTP_HELP,
                permanent=True,
                field="sender_otp",
            )
        sending: dict[str, Any] = {
            "sender_id": self.sender_id,
            "name": (letter.reference or letter.id)[:MAX_NAME],
            "custom_id": letter.id,
        }
        if letter.reference:
            sending["custom_data"] = letter.reference[:MAX_CUSTOM_DATA]
        if letter.message:
            sending["message"] = letter.message
        created = self._request(
            "POST", f"{LREQ_PATH}/sendings", json=sending, action="create the sending", expect=(200, 201)
        ).json()
        sending_id = str(created["id"])
        try:
            for document in letter.documents:
                self._request(
                    "POST",
                    f"{LREQ_PATH}/sendings/{sending_id}/documents",
                    files={"document": (document.filename, document.content, "application/pdf")},
                    data={"name": document.filename},
                    action="add a document",
                    expect=(200, 201),
                )
            recipient = {
                "legal_status": "PROFESSIONAL" if letter.recipient.type == "professional" else "INDIVIDUAL",
                "first_name": letter.recipient.first_name,
                "last_name": letter.recipient.last_name,
                "email": letter.recipient.email,
                "custom_id": letter.id,
            }
            if letter.recipient.company:
                recipient["company"] = letter.recipient.company
            self._request(
                "POST",
                f"{LREQ_PATH}/sendings/{sending_id}/recipients",
                json=recipient,
                action="add the recipient",
                expect=(200, 201),
            )
            # The only step after which the letter may be on its way.
            self._request(
                "POST",
                f"{LREQ_PATH}/sendings/{sending_id}/submit",
                action="submit the sending",
                creates=True,
                expect=(200, 202),
            )
        except ProviderError:
            # Also after a failed submit: a DRAFT left in the customer's Maileva area could be sent by
            # hand, and the retry makes a new sending. Maileva deletes drafts only, so a sending that
            # the failed call did submit after all stays (and the retry finds it by reference).
            self._delete_draft(sending_id)
            raise
        return SubmitResult(provider_letter_id=sending_id)

    def _delete_draft(self, sending_id: str) -> None:
        try:
            self._request("DELETE", f"{LREQ_PATH}/sendings/{sending_id}", action="delete the draft", expect=(200, 204))
        except ProviderError:
            # Best effort (the original error is the one to report); find_by_reference ignores drafts.
            log.warning("maileva: the draft sending %s could not be deleted", sending_id)

    def find_by_reference(self, letter_id: str, *, page_size: int = 100, max_pages: int = 5) -> str | None:
        """The submitted sending whose ``custom_id`` is our letter id, if any.

        ``GET /sendings`` accepts an attribute as a filter; the result is also filtered here,
        and DRAFT sendings (never submitted) are ignored.
        """
        for page in range(max_pages):
            response = self._request(
                "GET",
                f"{LREQ_PATH}/sendings",
                params={
                    "custom_id": letter_id,
                    "start_index": page * page_size + 1,
                    "count": page_size,
                    "sort": "creation_date",
                    "desc": "true",
                },
                action="list sendings",
            )
            sendings = [s for s in response.json().get("sendings") or [] if isinstance(s, dict)]
            for sending in sendings:
                if sending.get("custom_id") == letter_id and sending.get("status") != "DRAFT" and sending.get("id"):
                    return str(sending["id"])
            if len(sendings) < page_size:
                return None
        return None

    def check_account(self) -> dict[str, Any]:
        """Sign in and read the sender (``GET /senders/{id}``); say what the sender still has to do.

        Not part of the Provider Protocol: the account API offers it when an adapter has it.
        """
        sender = self._request("GET", f"{EMITTER_PATH}/senders/{self.sender_id}", action="read the sender").json()
        steps = []
        status = str(sender.get("status") or "")
        # StatusResource of the electronic_mail_emitter spec.
        advice = {
            "VALIDATING": "The sender must click the verification link Maileva e-mailed them (valid 60 minutes).",
            "EXPIRED": "The sender's verification link expired: set the sender account up again in Maileva.",
            "ACCESS_GRANTING": "The sender must accept, by e-mail, linking their AR24 account to Maileva.",
        }
        if status in advice:
            steps.append(advice[status])
        name = " ".join(str(sender.get(k) or "") for k in ("first_name", "last_name")).strip()
        return {
            "ok": not steps,
            "sender": {"id": str(sender.get("id", self.sender_id)), "name": name, "email": sender.get("email")},
            # Maileva does not say whether the OTP key was ordered; a certificate shows it was.
            "identity_verified": True if sender.get("has_certificate") else None,
            "next_steps": steps
            or [
                "If the sender has no OTP key yet, order it from the sender account in Maileva "
                "(it arrives by registered post within 2 to 8 days)."
            ],
        }

    def fetch_state(self, provider_letter_id: str) -> ProviderState:
        """Read the sending's recipient (one per letter) and derive the events."""
        response = self._request(
            "GET", f"{LREQ_PATH}/sendings/{provider_letter_id}/recipients", action="read the recipients"
        )
        recipients = [r for r in response.json().get("recipients") or [] if isinstance(r, dict)]
        now = self.context.now()
        events: tuple[ProviderEvent, ...] = ()
        for recipient in recipients[:1]:
            events = events_from_recipient(provider_letter_id, recipient, now)
        final = any(event.status in FINAL_STATUSES for event in events)
        return ProviderState(provider_letter_id=provider_letter_id, events=events, final=final)

    def download_proof(self, proof: ProofRef) -> bytes:
        """The deposit or delivery proof PDF, byte-exact (authenticated GET)."""
        if proof.content is not None:
            return proof.content
        if not proof.url:
            raise ProviderError("proof_unavailable", "The proof has no download link.", permanent=True)
        if proof.url.startswith("http") and not proof.url.startswith(self.base_url + "/"):
            raise ProviderError("proof_unavailable", "The proof link does not point to Maileva.", permanent=True)
        try:
            response = self._request(
                "GET", proof.url, action="download the proof", headers={"Accept": "application/pdf"}
            )
        except ProviderError as exc:
            if exc.code != "provider_not_found":
                raise
            # The status can be read before its proof is published: fetch it again later.
            raise ProviderError(
                "proof_unavailable", "Maileva has not published the proof yet.", permanent=False
            ) from exc
        if not response.content.startswith(b"%PDF"):
            raise ProviderError("proof_unavailable", "Maileva did not serve a PDF proof.", permanent=False)
        return response.content

    def parse_callback(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str | None:
        """Maileva LREQ has no callbacks: every call to a Maileva callback URL is refused."""
        raise WebhookRejected("Maileva LREQ letters are followed by polling", status=404)
