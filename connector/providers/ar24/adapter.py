"""The AR24 adapter behind the bridge's Provider Protocol."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn
from urllib.parse import parse_qs, urlsplit

import requests

from connector.lib.spool import HashingFile
from connector.providers import transport
from connector.providers.ar24.crypto import decrypt_response, paris_date, parse_paris_date, sign_date
from connector.providers.ar24.errors import _CHECK_SETTINGS, _OTP_HELP, MAINTENANCE_RETRY_AFTER, error_for
from connector.providers.ar24.events import events_from_mail
from connector.providers.ar24.protocol import (
    DEFAULT_TIMEOUT,
    ERROR_BODY_BYTES,
    OTP_TIMEOUT,
    PDF_MAGIC,
    REMOTE_ADDR_HEADER,
)
from connector.providers.base import (
    FINAL_STATUSES,
    OutgoingDocument,
    OutgoingLetter,
    ProofRef,
    ProviderContext,
    ProviderError,
    ProviderState,
    SubmitResult,
    WebhookRejected,
    new_proof_file,
    proof_file_of,
)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _allowlist(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if not value:
        return []
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip()]


class AR24Provider:
    """AR24 behind the bridge's Provider Protocol (``connector.providers.base.Provider``)."""

    name: ClassVar[str] = "ar24"
    display_name: ClassVar[str] = "AR24"
    supports_webhooks: ClassVar[bool] = True
    SETTINGS: ClassVar[tuple[str, ...]] = ("base_url", "token", "private_key", "user_id")
    SECRET_SETTINGS: ClassVar[tuple[str, ...]] = ("token", "private_key")
    # ``callback_ip_allowlist``: comma-separated addresses or networks allowed to call the
    # per-letter callback URL (AR24 documents 185.183.140.195); empty means token-only.
    OPTIONAL_SETTINGS: ClassVar[tuple[str, ...]] = ("callback_ip_allowlist", "timeout")

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        settings = context.settings
        self.base_url = str(settings.get("base_url") or "").rstrip("/")
        self.token = str(settings.get("token") or "")
        self.private_key = str(settings.get("private_key") or "")
        self.user_id = str(settings.get("user_id") or "")
        self.timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT)

    # -- transport --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        upload: OutgoingDocument | None = None,
        creates: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """One signed AR24 call; returns the decrypted ``result``.

        ``creates`` marks the call that makes the letter exist at AR24: when it may have reached
        AR24 without us learning the outcome, the error says ``ambiguous=True``.
        """
        if not (self.base_url and self.token and self.private_key):
            raise ProviderError(
                "provider_misconfigured",
                f"The AR24 settings are incomplete. {_CHECK_SETTINGS}",
                permanent=True,
            )
        date = paris_date(self.context.now())
        fields = {"token": self.token, "date": date, **(params or {})}
        kwargs: dict[str, Any] = {"headers": {"signature": sign_date(self.private_key, date)}}
        if method == "GET":
            kwargs["params"] = fields
        elif upload is None:
            kwargs["data"] = fields
        if upload is None:
            response = self._send(method, path, timeout=timeout, creates=creates, **kwargs)
        else:
            # The fields, then the file, in one multipart body streamed from the document's reader.
            with transport.multipart_upload([(k, str(v)) for k, v in fields.items()], "file", upload) as body:
                kwargs["headers"]["Content-Type"] = body.content_type
                response = self._send(method, path, timeout=timeout, creates=creates, data=body, **kwargs)
        return self._result(response, date, creates=creates)

    def _send(self, method: str, path: str, *, timeout: float | None, creates: bool,
              **kwargs: Any) -> requests.Response:
        return transport.call(
            self.context,
            method,
            f"{self.base_url}{path}",
            provider="AR24",
            timeout=timeout or self.timeout,
            creates=creates,
            **kwargs,
        )

    def _result(self, response: requests.Response, date: str, *, creates: bool) -> Any:
        body = response.content
        payload: Any = None
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            # Errors and the maintenance notice arrive in clear JSON, whatever the HTTP status.
            return self._interpret(payload)
        if response.status_code != 200:
            transient = transport.is_transient_status(response.status_code)
            raise ProviderError(
                "provider_unavailable" if transient else "provider_error",
                f"AR24 answered HTTP {response.status_code}.",
                permanent=not transient,
                retry_after=transport.retry_after(response),
                ambiguous=creates and response.status_code >= 500,
            )
        try:
            payload = json.loads(decrypt_response(self.private_key, date, body))
        except ValueError as exc:
            raise ProviderError(
                "provider_auth_failed",
                f"AR24's answer could not be decrypted with the private key. {_CHECK_SETTINGS}",
                permanent=not creates,
                # The letter may exist even though its answer is unreadable.
                ambiguous=creates,
            ) from exc
        if not isinstance(payload, dict):
            raise ProviderError("provider_error", "AR24 sent an unexpected answer.", permanent=False, ambiguous=creates)
        return self._interpret(payload)

    @staticmethod
    def _interpret(payload: Mapping[str, Any]) -> Any:
        status = str(payload.get("status") or "").upper()
        if status == "SUCCESS":
            return payload.get("result")
        if status == "MAINTENANCE":
            raise ProviderError(
                "provider_unavailable",
                "AR24 is in scheduled maintenance; the bridge will try again later.",
                permanent=False,
                retry_after=MAINTENANCE_RETRY_AFTER,
                provider_code="maintenance",
            )
        if status == "ERROR":
            raise error_for(payload)
        raise ProviderError("provider_error", f"AR24 sent an unknown status {status or '(none)'!r}.", permanent=False)

    # -- Provider Protocol -----------------------------------------------------------------

    def prepare_submission(self, sender_otp: str | None) -> dict[str, Any]:
        """Exchange the sender's 6-digit OTP for AR24's one-hour ``auth_otp_hash``.

        The OTP itself is neither returned nor stored; only the hash and its expiry are.
        """
        otp = (sender_otp or "").strip()
        if not otp:
            raise ProviderError(
                "sender_otp_required",
                "AR24 sends qualified (eIDAS) letters only once the sender is identified. "
                + _OTP_HELP
                + " The sender receives their OTP key once, by registered post, after AR24 verifies "
                "their identity.",
                permanent=True,
                field="sender_otp",
            )
        if not transport.OTP_PATTERN.fullmatch(otp):
            raise ProviderError(
                "sender_otp_invalid",
                "The one-time code must be 6 digits. " + _OTP_HELP,
                permanent=True,
                field="sender_otp",
            )
        # Runs inside the caller's API request (Zapier gives an action 30 s): keep it short.
        result = self._call(
            "POST", "/user/auth_otp", {"id_user": self.user_id, "otp": otp}, timeout=min(self.timeout, OTP_TIMEOUT)
        )
        otp_hash = result.get("hash") if isinstance(result, dict) else None
        if not otp_hash:
            raise ProviderError("provider_error", "AR24 did not return the sender's identification.", permanent=False)
        expires = parse_paris_date(result.get("expiration_date"))
        if expires is None:
            expires = self.context.now().astimezone(UTC) + timedelta(hours=1)
        return {"auth_otp_hash": str(otp_hash), "auth_otp_expires_at": expires.isoformat()}

    def _sender_hash(self, letter: OutgoingLetter) -> str:
        otp_hash = letter.submit_context.get("auth_otp_hash")
        if not otp_hash:
            raise ProviderError(
                "sender_otp_required",
                "This letter was accepted without the sender's AR24 identification. " + _OTP_HELP,
                permanent=True,
                field="sender_otp",
            )
        expires_raw = letter.submit_context.get("auth_otp_expires_at")
        if expires_raw:
            expires = datetime.fromisoformat(str(expires_raw))
            if expires <= self.context.now():
                raise ProviderError(
                    "sender_otp_expired",
                    "The sender's AR24 identification lasts one hour and expired before the letter "
                    "could be sent. " + _OTP_HELP,
                    permanent=True,
                    field="sender_otp",
                )
        return str(otp_hash)

    def check_letter(self, letter: OutgoingLetter) -> None:
        """AR24 publishes no numeric limits to check beforehand; its refusals arrive as mapped slugs."""
        return None

    def submit(self, letter: OutgoingLetter) -> SubmitResult:
        """Upload the documents, then send the eIDAS mail with ``ref_client`` = our letter id."""
        otp_hash = self._sender_hash(letter)
        fields: dict[str, Any] = {
            "id_user": self.user_id,
            "to_email": letter.recipient.email,
            # AR24 documents two recipient kinds; anyone not professional (individuals,
            # administrations, associations) is sent as "particulier", the consent-bound kind.
            "dest_statut": "professionnel" if letter.recipient.type == "professional" else "particulier",
            "ref_client": letter.id,
            "ref_dossier": letter.reference or letter.id,
            "eidas": "1",
            "auth_otp_hash": otp_hash,
        }
        for key, value in (
            ("to_firstname", letter.recipient.first_name),
            ("to_lastname", letter.recipient.last_name),
            ("to_company", letter.recipient.company),
            ("content", letter.message),
            ("webhook", letter.callback_url),
        ):
            if value:
                fields[key] = value
        for index, document in enumerate(letter.documents):
            result = self._call(
                "POST",
                "/attachment",
                {"id_user": self.user_id, "file_name": document.filename},
                upload=document,
            )
            file_id = result.get("file_id") if isinstance(result, dict) else None
            if file_id in (None, ""):
                raise ProviderError("provider_error", "AR24 did not return the uploaded file's id.", permanent=False)
            fields[f"attachment[{index}]"] = str(file_id)
        mail = self._call("POST", "/mail", fields, creates=True)
        if not isinstance(mail, dict) or mail.get("id") in (None, ""):
            raise ProviderError(
                "provider_error",
                "AR24 accepted the letter but returned no id.",
                permanent=False,
                ambiguous=True,
            )
        return SubmitResult(provider_letter_id=str(mail["id"]), events=events_from_mail(mail, self.context.now()))

    def find_by_reference(self, letter_id: str, *, page_size: int = 100, max_pages: int = 10) -> str | None:
        """Look our letter up among the sender's mails by ``ref_client``.

        AR24 documents no search by reference: ``GET /user/mail`` lists the sender's mails. The
        paging parameters (``max``, ``start``, ``sort``) are those of AR24's other list routes;
        newest first, so a letter just submitted is on the first page.
        """
        seen: set[str] = set()
        for page in range(max_pages):
            result = self._call(
                "GET",
                "/user/mail",
                {"id_user": self.user_id, "max": page_size, "start": page * page_size, "sort": "DESC"},
            )
            mails = _mail_list(result)
            for mail in mails:
                if str(mail.get("ref_client") or "") == letter_id and mail.get("id") not in (None, ""):
                    return str(mail["id"])
            ids = {str(mail.get("id")) for mail in mails}
            # A short page ends the list; so does a page already seen (paging ignored: all at once).
            if len(mails) < page_size or ids <= seen:
                return None
            seen |= ids
        return None

    def check_account(self) -> dict[str, Any]:
        """Check the settings against AR24 (``GET /user``) and say what the sender still has to do.

        Not part of the Provider Protocol: the account API offers it when an adapter has it.
        """
        user = self._call("GET", "/user", {"id_user": self.user_id})
        if not isinstance(user, dict):
            raise ProviderError("provider_error", "AR24 returned no sender account.", permanent=False)
        # AR24: "the presence of is_identity_verified indicates a verified identity".
        verified = "is_identity_verified" in user and user["is_identity_verified"] not in (False, 0, "0", "", None)
        steps = [
            message
            for flag, message in (
                ("confirmed", "The sender must confirm their e-mail address with the link AR24 sent them."),
                ("cgu", "The sender must accept AR24's terms of use in their AR24 account."),
                ("is_payment_possible", "Add a payment method to the sender's AR24 account (or its team)."),
            )
            if user.get(flag) is False
        ]
        if not verified:
            steps.append(
                "Order the sender's identity verification (in their AR24 account): AR24 then posts them "
                "their OTP key by registered letter (allow a few days). Qualified letters need it."
            )
        name = " ".join(str(user.get(k) or "") for k in ("firstname", "lastname")).strip() or user.get("name")
        return {
            "ok": not steps,
            "sender": {"id": str(user.get("id", self.user_id)), "name": name, "email": user.get("email")},
            "identity_verified": verified,
            "next_steps": steps,
        }

    def fetch_state(self, provider_letter_id: str) -> ProviderState:
        """Re-read the mail (``GET /mail?id=``) and derive its events from the proof fields."""
        mail = self._call("GET", "/mail", {"id": provider_letter_id})
        if not isinstance(mail, dict):
            raise ProviderError("provider_error", "AR24 returned no mail.", permanent=False)
        events = events_from_mail(mail, self.context.now())
        final = any(event.status in FINAL_STATUSES for event in events)
        return ProviderState(provider_letter_id=str(mail.get("id", provider_letter_id)), events=events, final=final)

    def download_proof(self, proof: ProofRef) -> HashingFile:
        """The proof PDF, byte-exact, in a temporary file written as it arrives. AR24's proof links
        are tokenised, so the GET is unsigned; the link must point to AR24 (the base URL's host or
        a *.ar24.fr host)."""
        if proof.content is not None:
            return proof_file_of(self.context, proof.content)
        if not proof.url:
            raise ProviderError("proof_unavailable", "The proof has no download link.", permanent=True)
        host = (urlsplit(proof.url).hostname or "").lower()
        allowed = (urlsplit(self.base_url).hostname or "").lower()
        if urlsplit(proof.url).scheme not in ("https", "http") or not (
            host == allowed or host == "ar24.fr" or host.endswith(".ar24.fr")
        ):
            raise ProviderError("proof_unavailable", "The proof link does not point to AR24.", permanent=True)
        downloaded = new_proof_file(self.context)
        try:
            response = transport.call(self.context, "GET", proof.url, provider="AR24", timeout=self.timeout,
                                      write=downloaded.write)
            if response.status_code != 200 or downloaded.head(len(PDF_MAGIC)) != PDF_MAGIC:
                self._refused_proof(response, downloaded)
        except BaseException:
            downloaded.close()
            raise
        return downloaded

    def _refused_proof(self, response: requests.Response, downloaded: HashingFile) -> NoReturn:
        """AR24 answered something other than the PDF: its JSON error when it is one (AR24 sends
        them with HTTP 200, so the body may be in ``downloaded``; only its start is read), else
        an HTML page or the like, while the proof is generated."""
        body = downloaded.head(ERROR_BODY_BYTES) if downloaded.size else response.content
        payload: Any = None
        try:
            payload = json.loads(body)
        except ValueError:
            pass
        if isinstance(payload, dict) and str(payload.get("status", "")).upper() in ("ERROR", "MAINTENANCE"):
            self._interpret(payload)
        raise ProviderError(
            "proof_unavailable",
            f"AR24 did not serve the proof PDF (HTTP {response.status_code}); it will be fetched again.",
            permanent=False,
        )

    def parse_callback(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str | None:
        """Check the optional IP allow-list and return the mail id the callback is about.

        AR24 signs nothing: the per-letter URL token (checked by the bridge) authenticates the
        call, and the body is only a hint. Its fields are not published; ``id_mail`` (as in the
        Event schema of Maileva's LREQ API, which runs on AR24) is read from a form or JSON body,
        or from the query string.
        """
        networks = _allowlist(self.context.settings.get("callback_ip_allowlist"))
        if networks:
            remote = _header(headers, REMOTE_ADDR_HEADER)
            try:
                address = ipaddress.ip_address((remote or "").strip())
            except ValueError as exc:
                raise WebhookRejected("the caller's address is unknown", status=403) from exc
            if not any(address in network for network in networks):
                raise WebhookRejected("the caller's address is not allowed", status=403)
        return _mail_id_from_callback(headers, query, body)


def _mail_id_from_callback(headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str | None:
    candidates: dict[str, Any] = {}
    text = body.decode("utf-8", errors="replace").strip() if body else ""
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            candidates.update(parsed)
    elif text:
        candidates.update({k: v[0] for k, v in parse_qs(text).items() if v})
    for key in ("id_mail", "id"):
        value = candidates.get(key) or query.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def _mail_list(result: Any) -> list[Mapping[str, Any]]:
    """The mails of a ``GET /user/mail`` answer. One public client reads ``result`` as the list
    itself; AR24's other list routes wrap theirs (``result.users``, ``result.attachments``); a
    PHP API may also send a list as an object keyed by id."""
    if isinstance(result, list):
        return [m for m in result if isinstance(m, dict)]
    if isinstance(result, dict):
        for key in ("mails", "mail", "registered_mails", "emails"):
            if isinstance(result.get(key), list | dict):
                return _mail_list(result[key])
        values = list(result.values())
        if values and all(isinstance(v, dict) for v in values):
            return values
    return []
