"""The Maileva LREQ adapter behind the bridge's Provider Protocol."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import requests

from connector.lib.spool import HashingFile
from connector.providers import transport
from connector.providers.base import (
    FINAL_STATUSES,
    OutgoingDocument,
    OutgoingLetter,
    ProofRef,
    ProviderContext,
    ProviderError,
    ProviderEvent,
    ProviderState,
    SubmitResult,
    WebhookRejected,
    new_proof_file,
    proof_file_of,
)
from connector.providers.maileva.auth import _EXPIRY_MARGIN, _TOKENS, _TOKENS_LOCK, _Token, _token_cache_key
from connector.providers.maileva.errors import error_for
from connector.providers.maileva.events import events_from_recipient
from connector.providers.maileva.protocol import (
    _CHECK_SETTINGS,
    _OTP_HELP,
    DEFAULT_TIMEOUT,
    EMAIL_PATTERN,
    EMITTER_PATH,
    LREQ_PATH,
    MAX_COMPANY,
    MAX_CUSTOM_DATA,
    MAX_CUSTOM_ID,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_PERSON_NAME,
    log,
    parse_iso,
)


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
        upload: tuple[Sequence[tuple[str, str]], str, OutgoingDocument] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One authenticated call; on 401 the token is renewed once. ``upload`` (form fields, file
        field, document) sends a streamed multipart body, made anew for each attempt."""
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
            with contextlib.ExitStack() as stack:
                if upload is not None:
                    body = stack.enter_context(transport.multipart_upload(*upload))
                    headers["Content-Type"] = body.content_type
                    kwargs["data"] = body
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
                    upload=([("name", document.filename)], "document", document),
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

    def download_proof(self, proof: ProofRef) -> HashingFile:
        """The deposit or delivery proof PDF, byte-exact (authenticated GET), in a temporary file
        written as it arrives."""
        if proof.content is not None:
            return proof_file_of(self.context, proof.content)
        if not proof.url:
            raise ProviderError("proof_unavailable", "The proof has no download link.", permanent=True)
        if proof.url.startswith("http") and not proof.url.startswith(self.base_url + "/"):
            raise ProviderError("proof_unavailable", "The proof link does not point to Maileva.", permanent=True)
        downloaded = new_proof_file(self.context)
        try:
            try:
                # Only a 2xx answer's body is written to the file: a 401 answered before the
                # token's renewal leaves it empty for the second attempt.
                self._request("GET", proof.url, action="download the proof", headers={"Accept": "application/pdf"},
                              write=downloaded.write)
            except ProviderError as exc:
                if exc.code != "provider_not_found":
                    raise
                # The status can be read before its proof is published: fetch it again later.
                raise ProviderError(
                    "proof_unavailable", "Maileva has not published the proof yet.", permanent=False
                ) from exc
            if downloaded.head(4) != b"%PDF":
                raise ProviderError("proof_unavailable", "Maileva did not serve a PDF proof.", permanent=False)
        except BaseException:
            downloaded.close()
            raise
        return downloaded

    def parse_callback(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str | None:
        """Maileva LREQ has no callbacks: every call to a Maileva callback URL is refused."""
        raise WebhookRejected("Maileva LREQ letters are followed by polling", status=404)
