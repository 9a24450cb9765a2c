"""What subscribers receive: one delivery body per event type, for the document's ``webhooks``.

Every delivery POSTs ``{"type", "timestamp", "data"}`` (``connector.delivery.hooks``), signed with
Standard Webhooks headers. ``data`` is the letter for ``letter.*`` events and the account event's own
object otherwise (``connector.delivery.events.ACCOUNT_EVENTS``); each body is a pydantic model made
here from those declarations, so its JSON Schema refers to the same shapes the API answers with.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from connector import shapes
from connector.batches import shapes as batch_shapes
from connector.delivery.events import ACCOUNT_EVENTS
from connector.delivery.hooks import EVENT_TYPES, HOOK_DISABLED
from connector.monitoring import shapes as monitoring_shapes

# The shapes an account event's ``schema_ref`` names, by component name.
DATA_SHAPES: dict[str, type[shapes.Shape]] = {shape.__name__: shape for shape in (
    shapes.Hook, shapes.ConsentInvitation, batch_shapes.Batch, monitoring_shapes.Alert)}

_EXAMPLE_HOOK = {
    "id": "hook_6f1c0e2ad4b84c1f9a3e8b7d5c2a1f00",
    "object": "hook",
    "target_url": "https://hooks.zapier.com/hooks/standard/123/abc/",
    "events": ["letter.accepted", "letter.refused"],
    "filters": {},
    "status": "active",
    "disabled_reason": None,
    "failing_since": None,
    "created_at": "2026-11-27T09:00:00Z",
}
_EXAMPLE_LETTER = {
    "id": "let_0c9a4f3e2b1d4c5a8f7e6d5c4b3a2910",
    "object": "letter",
    "status": "accepted",
    "reference": "INV-2026-042",
    "recipient": {
        "type": "professional",
        "email": "compta@example.fr",
        "first_name": None,
        "last_name": None,
        "company": "Exemple SAS",
    },
    "message": None,
    "metadata": {},
    "documents": [{"id": "doc_1", "filename": "mise-en-demeure.pdf", "size": 48213, "sha256": "9f86d0…"}],
    "template": None,
    "provider": "sandbox",
    "provider_letter_id": "sbx_5e4d3c2b1a",
    "sandbox_outcome": "accepted",
    "failure": None,
    "proofs": [],
    "created_at": "2026-11-27T09:00:00Z",
    "updated_at": "2026-11-27T09:02:00Z",
    "deposited_at": "2026-11-27T09:01:00Z",
    "completed_at": "2026-11-27T09:02:00Z",
    "links": {},
}



def _event_component(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + "Event"


@functools.cache
def delivery_body_model(event_type: str) -> type[BaseModel]:
    """The model of a ``event_type`` delivery's body, with an example (one class per event type:
    made once, so that its JSON Schema is generated once too)."""
    account_event = ACCOUNT_EVENTS.get(event_type)
    data_type: Any
    if event_type == HOOK_DISABLED:
        data = copy.deepcopy(_EXAMPLE_HOOK)
        data.update(status="disabled", disabled_reason="every delivery failed since 2026-11-22T09:00:00+00:00")
        data_type, data_field = shapes.Hook, Field()
    elif account_event is not None:
        data = copy.deepcopy(account_event.example)
        data_type = DATA_SHAPES[account_event.schema_ref] if account_event.schema_ref else dict[str, Any]
        data_field = Field(description=account_event.description)
    else:
        data = copy.deepcopy(_EXAMPLE_LETTER)
        data["status"] = event_type.removeprefix("letter.")
        data_type = shapes.Letter
        data_field = Field(description="The letter as GET /v1/letters/{id} shows it, right after this event.")
    example = {"type": event_type, "timestamp": "2026-11-27T09:02:00Z", "data": data}
    return create_model(  # type: ignore[call-overload, no-any-return]
        _event_component(event_type),
        __config__=ConfigDict(json_schema_extra={"example": example}),
        __doc__=f"The body of a `{event_type}` delivery, signed with Standard Webhooks headers.",
        type=(Literal[event_type], ...),
        timestamp=(shapes.DateTime, Field(description="When the event occurred.",
                                          json_schema_extra={"format": "date-time"})),
        data=(data_type, data_field),
    )


def webhooks(schema: Callable[[type[BaseModel]], dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what subscribers receive, one entry per event type (``schema``
    names each delivery body's model in the document and gives its reference)."""
    return {
        event_type: {
            "post": {
                "summary": f"{event_type} delivery",
                "parameters": [
                    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                ],
                "requestBody": {"content": {"application/json": {"schema": schema(delivery_body_model(event_type))}}},
                "responses": {"2XX": {"description": "Received. Anything else is retried; 410 unsubscribes."}},
            }
        }
        for event_type in EVENT_TYPES
    }
