"""An AR24 mail object read as the bridge's normalised events (dates and proof fields)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connector.providers.ar24.crypto import parse_paris_date
from connector.providers.base import (
    PROOF_KIND_BY_STATUS,
    LetterStatus,
    ProofRef,
    ProviderEvent,
)

# (date field, proof URL field(s), our status, AR24's proof code). Order is the lifecycle order.
_STEPS: tuple[tuple[str, tuple[str, ...], LetterStatus, str], ...] = (
    # The 2022 client reads the deposit proof as proof_dp_url; current payloads use proof_ev_url.
    ("ts_ev_date", ("proof_ev_url", "proof_dp_url"), LetterStatus.DEPOSITED, "ev"),
    ("view_date", ("proof_ar_url",), LetterStatus.ACCEPTED, "ar"),
    ("refused_date", ("proof_rf_url",), LetterStatus.REFUSED, "rf"),
    ("negligence_date", ("proof_ng_url",), LetterStatus.NEGLECTED, "ng"),
    ("bounced_date", ("proof_bc_url",), LetterStatus.BOUNCED, "bc"),
)


def events_from_mail(mail: Mapping[str, Any], now: datetime) -> tuple[ProviderEvent, ...]:
    """The normalised events an AR24 mail object shows, oldest first.

    A step counts only once its proof URL is present: the date alone may precede the proof PDF,
    and an event is emitted once (de-duplicated), so it must carry its proof the first time.
    """
    mail_id = str(mail.get("id"))
    found: list[ProviderEvent] = []
    for date_field, url_fields, status, code in _STEPS:
        url = next((mail[f] for f in url_fields if isinstance(mail.get(f), str) and mail[f].strip()), None)
        if not url:
            continue
        # A proof without its date (not seen in fixtures) is dated when we first see it.
        occurred = parse_paris_date(mail.get(date_field)) or now
        kind = PROOF_KIND_BY_STATUS[status]
        found.append(
            ProviderEvent(
                status=status,
                occurred_at=occurred,
                provider_event_id=f"{mail_id}:{status.value}",
                raw={k: mail.get(k) for k in ("id", "status", date_field, *url_fields) if k in mail},
                proof=ProofRef(kind=kind, url=url.strip(), filename=f"ar24-{mail_id}-{code}.pdf"),
            )
        )
    # Deposit first, then the outcome, whatever the clocks say.
    return tuple(found)
