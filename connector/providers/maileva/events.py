"""A Maileva LREQ recipient read as the bridge's normalised events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connector.providers.base import (
    PROOF_KIND_BY_STATUS,
    LetterStatus,
    ProofRef,
    ProviderEvent,
)
from connector.providers.maileva.protocol import (
    FAILURE_MESSAGES,
    IN_PROGRESS,
    LREQ_PATH,
    NEEDS_DELIVERY_PROOF,
    PROOF_STATUS,
    RECIPIENT_STATUS,
    parse_iso,
)


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
