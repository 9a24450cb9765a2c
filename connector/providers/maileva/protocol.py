"""What Maileva's LREQ specification fixes: paths, field limits, statuses and proof types."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from connector.providers.base import (
    LetterStatus,
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
