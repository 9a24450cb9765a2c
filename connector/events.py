"""Account events that are not a letter's status change (batch, consent, alert, hook events).

Letter status events are written by ``connector.letters.record_event``; every other kind of event an
account's hooks can subscribe to is declared once here, in :data:`ACCOUNT_EVENTS`, and written with
:func:`record_account_event` in the caller's transaction, so the event and its deliveries commit
together (or not at all). The hooks API, its OpenAPI document and the platform catalogues read the
list of event types from :data:`ACCOUNT_EVENTS`; a feature adds its events by adding entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connector.models import Event, new_id


@dataclass(frozen=True)
class AccountEventType:
    """One kind of account event: its labels and an example of its ``data``."""

    type: str
    label_fr: str
    label_en: str
    description: str
    # ``data`` of an example delivery; documents the shape in OpenAPI and in platform samples.
    example: dict[str, Any] = field(default_factory=dict)
    # Name of the OpenAPI component that describes ``data`` (None: a free-form object).
    schema_ref: str | None = None


# Every declaration lives in this module (not next to its emitter) so that the list is complete
# whatever has been imported: the hooks API builds its OpenAPI document from it at import time.
ACCOUNT_EVENTS: dict[str, AccountEventType] = {}


def register(event_type: AccountEventType) -> AccountEventType:
    """Declare an account event type (below, in this module)."""
    ACCOUNT_EVENTS[event_type.type] = event_type
    return event_type


HOOK_DISABLED = register(AccountEventType(
    type="hook.disabled",
    label_fr="Abonnement webhook désactivé",
    label_en="Webhook subscription disabled",
    description="A subscription was disabled after every delivery failed for days.",
    schema_ref="Hook",
))


def record_account_event(session: Session, account_id: str, event_type: str, data: dict[str, Any],
                         now: datetime, *, letter_id: str | None = None) -> Event:
    """Write one account event and queue its signed deliveries, in the caller's transaction."""
    # Imported here: webhooks_out imports this module for the list of event types.
    from connector.webhooks_out import enqueue_deliveries

    if event_type not in ACCOUNT_EVENTS:
        raise ValueError(f"undeclared account event type {event_type!r}")
    event = Event(id=new_id("evt"), account_id=account_id, letter_id=letter_id, type=event_type,
                  occurred_at=now, data=data, raw={})
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event
