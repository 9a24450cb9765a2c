"""AR24's error slugs, each mapped to the bridge's error code, words and retry decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.providers.base import (
    ProviderError,
)


@dataclass(frozen=True, slots=True)
class _ErrorRule:
    code: str
    message: str
    permanent: bool
    field: str | None = None


_CHECK_SETTINGS = "Check the AR24 settings of this account (PUT /v1/account/provider)."
_OTP_HELP = (
    "Type a fresh 6-digit code from the sender's AR24 OTP key (authenticator app, or "
    "https://otp-client.ar24.fr/) in sender_otp and send the letter again."
)

# Every slug AR24 documents for the calls the bridge makes, with the retry decision.
ERRORS: dict[str, _ErrorRule] = {
    # Authentication of the API call itself.
    "token_invalid": _ErrorRule("provider_auth_failed", f"AR24 refused the API token. {_CHECK_SETTINGS}", True),
    "token_missing": _ErrorRule("provider_auth_failed", f"No AR24 API token was sent. {_CHECK_SETTINGS}", True),
    "empty_signature": _ErrorRule(
        "provider_auth_failed", f"AR24 did not receive the request signature. {_CHECK_SETTINGS}", True
    ),
    "empty_date": _ErrorRule("provider_error", "AR24 did not receive the request date.", True),
    "invalid_date": _ErrorRule("provider_error", "AR24 refused the request date format.", True),
    # Clock skew: the date must lie between now and +10 minutes; a later attempt may pass.
    "expired_date": _ErrorRule(
        "provider_clock_skew", "AR24 found the request date in the past; the server clock may be late.", False
    ),
    "date_in_future": _ErrorRule(
        "provider_clock_skew",
        "AR24 found the request date too far ahead; the server clock may be early.",
        False,
    ),
    # Recipient.
    "missing_email": _ErrorRule("invalid_email", "The recipient has no e-mail address.", True, "recipient.email"),
    "same_sender_recipients_emails": _ErrorRule(
        "invalid_recipient",
        "The recipient's e-mail address is the sender's own address.",
        True,
        "recipient.email",
    ),
    "invalid_recipient": _ErrorRule(
        "invalid_email", "AR24 considers the recipient's e-mail address invalid.", True, "recipient.email"
    ),
    "invalid_email": _ErrorRule(
        "invalid_email",
        "The recipient's e-mail address is incorrect: its domain does not exist.",
        True,
        "recipient.email",
    ),
    "group_not_exist": _ErrorRule("provider_error", "AR24 says the recipient group does not exist.", True),
    # Sender account.
    "user_not_exist": _ErrorRule(
        "sender_account_invalid", f"AR24 has no sender account with this user_id. {_CHECK_SETTINGS}", True
    ),
    "missing_user_id": _ErrorRule(
        "sender_account_invalid", f"No AR24 sender account (user_id) was given. {_CHECK_SETTINGS}", True
    ),
    "user_account_not_confirmed": _ErrorRule(
        "sender_account_not_confirmed",
        "The sender must first confirm their e-mail address with the link AR24 sent them.",
        True,
    ),
    "user_eula_not_accepted": _ErrorRule(
        "sender_terms_not_accepted",
        "The sender must first accept AR24's terms of use in their AR24 account.",
        True,
    ),
    "user_name_empty": _ErrorRule(
        "sender_account_incomplete", "The sender's AR24 account has no first or last name; complete it.", True
    ),
    "user_no_payment": _ErrorRule(
        "sender_no_payment_method",
        "The sender's AR24 account (or its team) has no payment method; add one in AR24, then resend.",
        True,
    ),
    "user_unavailable": _ErrorRule(
        "sender_access_not_granted",
        "The sender has not granted this API access to their AR24 account; they must accept the "
        "access request AR24 e-mailed them.",
        True,
    ),
    # Attachments. A just-uploaded file reported missing is worth one more complete attempt.
    "attachment_not_exists": _ErrorRule(
        "provider_error", "AR24 lost one of the uploaded documents; the letter will be sent again.", False
    ),
    "attachment_unavailable": _ErrorRule(
        "provider_error",
        "AR24 could not use one of the uploaded documents; the letter will be sent again.",
        False,
    ),
    "attachment_too_big": _ErrorRule(
        "document_too_large", "A document is empty or larger than AR24 accepts.", True, "documents"
    ),
    "attachment_empty_name": _ErrorRule(
        "document_rejected", "AR24 could not read a document's file name.", True, "documents"
    ),
    "attachment_missing_file": _ErrorRule("document_rejected", "AR24 received no file.", True, "documents"),
    # Content.
    "content_exceeds_limit": _ErrorRule(
        "message_too_long", "The message is longer than AR24 accepts; shorten it.", True, "message"
    ),
    "forbidden_html": _ErrorRule(
        "message_forbidden_html", "The message contains HTML that AR24 forbids; remove it.", True, "message"
    ),
    "error_no_content_no_attachment": _ErrorRule(
        "letter_empty", "The letter has neither a message nor a document.", True, "documents"
    ),
    # eIDAS sender identification.
    "authentication_otp_hash_invalid": _ErrorRule(
        "sender_otp_expired",
        "The sender's one-hour AR24 identification is no longer valid. " + _OTP_HELP,
        True,
        "sender_otp",
    ),
    "authentication_otp_invalid": _ErrorRule(
        "sender_otp_invalid", "AR24 refused the sender's one-time code. " + _OTP_HELP, True, "sender_otp"
    ),
    "authentication_missing": _ErrorRule(
        "sender_otp_required",
        "A qualified (eIDAS) letter needs the sender identified. " + _OTP_HELP,
        True,
        "sender_otp",
    ),
    # Reads.
    "missing_erm_id": _ErrorRule("provider_error", "AR24 needs a mail id for this call.", True),
    "unknown_error": _ErrorRule("provider_error", "AR24 reported an unknown error.", False),
}
_UNKNOWN_SLUG = _ErrorRule("provider_error", "AR24 reported an error", False)
MAINTENANCE_RETRY_AFTER = 600.0


def error_for(payload: Mapping[str, Any]) -> ProviderError:
    """The bridge error for an AR24 clear-JSON error answer."""
    slug = str(payload.get("slug") or "")
    rule = ERRORS.get(slug)
    if rule is None:
        # Undocumented slug: keep AR24's own words and let the job retry; provider_code keeps it.
        detail = str(payload.get("message") or slug or "no detail")
        return ProviderError(
            _UNKNOWN_SLUG.code,
            f"{_UNKNOWN_SLUG.message}: {detail}",
            permanent=False,
            provider_code=slug or None,
        )
    return ProviderError(rule.code, rule.message, permanent=rule.permanent, field=rule.field, provider_code=slug)
