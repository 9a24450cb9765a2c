"""What a trigger gives the next step: :func:`trigger_item` (a letter's status event) and
:func:`account_event_item` (consent, alert and batch events), one definition for every platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.delivery.events import ACCOUNT_EVENTS
from connector.letters.vocabulary import PROOF_KIND_BY_STATUS
from connector.platforms.model import FieldType, OutputField, Text


def trigger_item(event_id: str, event_type: str, occurred_at: str, letter: Mapping[str, Any],
                 proof_file: Any = None) -> dict[str, Any]:
    """The item a status trigger gives the next step: the event, and the letter as it was then.

    One definition for every platform: the Zapier app's ``toItem`` (``zapier_app/lib/hooks.js``), the
    Make and n8n apps and the catalogue's samples produce exactly these keys (tests compare them).
    ``proof_file``: the platform's handle on the proof PDF when the letter has the event's proof.
    """
    kind = CATALOG_PROOF_KINDS.get(event_type)
    return {
        "id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "letter_id": letter["id"],
        "status": event_type.removeprefix("letter."),
        "reference": letter.get("reference"),
        "recipient": letter.get("recipient"),
        "message": letter.get("message"),
        "metadata": letter.get("metadata"),
        "template": letter.get("template"),
        "documents": letter.get("documents"),
        "failure": letter.get("failure"),
        "letter_created_at": letter.get("created_at"),
        "deposited_at": letter.get("deposited_at"),
        "completed_at": letter.get("completed_at"),
        "proof_kind": kind,
        "proof_file": proof_file,
    }


def account_event_item(event_id: str, event_type: str, occurred_at: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The item a trigger on an account event (consent.*, alert.*, batch.*) gives the next step.

    The item's ``id`` is the EVENT's (Zapier de-duplicates items by id: an invitation accepted then
    withdrawn is two events of one invitation); the object's own id is under its name
    (``invitation_id``, ``alert_id``: :attr:`AccountEventType.id_key`); its other fields keep theirs.
    One definition for every platform: the Zapier app's ``eventItem`` (``zapier_app/lib/hooks.js``),
    the n8n trigger and the Make webhook give these keys, and the catalogue's samples are made by it.
    """
    id_key = ACCOUNT_EVENTS[event_type].id_key
    own = {key: value for key, value in data.items() if key not in ("id", "type", "occurred_at", id_key)}
    return {"id": event_id, "type": event_type, "occurred_at": occurred_at, id_key: data.get("id"), **own}


# Event ids of the samples (an event id is ``evt_`` and 32 hex digits).
SAMPLE_EVENT_ID = "evt_8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"

# letter.<status> -> kind of the proof issued with it (``/v1/letters/<id>/proofs/<kind>``).
CATALOG_PROOF_KINDS: dict[str, str] = {f"letter.{status.value}": kind.value
                                       for status, kind in PROOF_KIND_BY_STATUS.items()}


# The event's own fields, first in every account-event trigger's item (see account_event_item).
ACCOUNT_EVENT_OUTPUTS = (
    OutputField("id", Text("Event ID", "ID de l'événement")),
    OutputField("type", Text("Event type", "Type d'événement")),
    OutputField("occurred_at", Text("Occurred at", "Survenu le"), FieldType.DATETIME),
)
