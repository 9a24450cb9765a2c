"""Account events that are not a letter's status change (batch, consent, alert, hook events).

Letter status events are written by ``connector.letters.service.record_event``; every other kind of event an
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
    # The name a platform trigger item gives ``data.id`` (the object's own id): the item's ``id`` is the
    # EVENT's, so that platforms that de-duplicate by id (Zapier) see each event of an object once.
    # Empty: ``<prefix>_id`` (``alert.raised`` -> ``alert_id``).
    object_id_key: str = ""

    @property
    def id_key(self) -> str:
        """The trigger item's key for the object's id (``invitation_id``, ``alert_id``…)."""
        return self.object_id_key or self.type.split(".", 1)[0] + "_id"


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


# Issue 17: alert rules (connector.monitoring.alerts) raise and resolve these.
_ALERT_EXAMPLE = {
    "id": "alr_12", "object": "alert", "rule": "technical_failure_rate", "label_fr": "Taux d'échec technique",
    "label_en": "Technical failure rate", "status": "open", "severity": "critical",
    "message": "Taux d'échec technique de 2.0% sur 24 h (2 lettre(s) sur 100)", "subject": None,
    "letter_id": None, "value": 0.02, "threshold": 0.01, "details": {"failed": 2, "submitted": 100},
    "raised_at": "2026-12-01T09:00:00Z", "last_seen_at": "2026-12-01T09:00:00Z", "resolved_at": None,
}
ALERT_RAISED = register(AccountEventType(
    type="alert.raised",
    label_fr="Nouvelle alerte",
    label_en="New alert",
    description="An alert rule's condition started to hold (failure or bounce rate, dead job, disabled "
                "webhook, failing provider credentials).",
    example=_ALERT_EXAMPLE,
    schema_ref="Alert",
))
ALERT_RESOLVED = register(AccountEventType(
    type="alert.resolved",
    label_fr="Alerte résolue",
    label_en="Alert resolved",
    description="An open alert's condition has cleared (and stayed clear for the debounce period).",
    example={**_ALERT_EXAMPLE, "status": "resolved", "resolved_at": "2026-12-01T11:00:00Z"},
    schema_ref="Alert",
))


# Issue 16: batches (connector.batches). ``data`` is the batch as GET /v1/batches/{id} shows it.
_BATCH_URL = "https://lre.exemple.fr/v1/batches/bat_3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c"
_BATCH_EXAMPLE = {
    "id": "bat_3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c", "object": "batch", "status": "processing", "total": 412,
    "counts": {"pending": 412, "rendered": 0, "submitted": 0, "queued": 0, "deposited": 0, "accepted": 0,
               "refused": 0, "neglected": 0, "bounced": 0, "failed": 0, "cancelled": 0},
    "progress": {"rendered": 0.0, "submitted": 0.0, "final": 0.0},
    "template": {"name": "convocation_ag_copropriete", "version": 2},
    "documents": [{"id": "bdoc_5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", "role": "attachment",
                   "filename": "projets-de-resolution.pdf", "size": 48213,
                   "sha256": "9f2c4e8a1b7d3f6e5c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"}],
    "reference": "AG-2027", "metadata": {}, "created_at": "2026-12-01T09:00:00Z", "cancel_requested_at": None,
    "completed_at": None,
    "links": {"self": _BATCH_URL, "letters": f"{_BATCH_URL}/letters", "report": f"{_BATCH_URL}/report",
              "evidence": f"{_BATCH_URL}/evidence"},
}
BATCH_CREATED = register(AccountEventType(
    type="batch.created",
    label_fr="Envoi groupé créé",
    label_en="Batch created",
    description="A batch was accepted: every row was valid; its letters are being made and sent.",
    example=_BATCH_EXAMPLE,
    schema_ref="Batch",
))
BATCH_COMPLETED = register(AccountEventType(
    type="batch.completed",
    label_fr="Envoi groupé terminé",
    label_en="Batch completed",
    description="Every letter of a batch reached a final status (accepted, refused, neglected, bounced, failed "
                "or cancelled); the bordereau is final.",
    example={**_BATCH_EXAMPLE, "status": "completed", "completed_at": "2026-12-16T18:00:00Z",
             "counts": {**_BATCH_EXAMPLE["counts"], "pending": 0, "rendered": 412, "submitted": 412,
                        "accepted": 405, "neglected": 7},
             "progress": {"rendered": 1.0, "submitted": 1.0, "final": 1.0}},
    schema_ref="Batch",
))


# Issue 18: consent invitations (connector.consent). ``data`` is the invitation as
# GET /v1/consents/invitations/{id} shows it; ``url`` is set only while it can be answered.
_CONSENT_EXAMPLE = {
    "id": "cinv_0f1e2d3c4b5a69788796a5b4c3d2e1f0", "object": "consent_invitation", "status": "pending",
    "email": "jeanne.martin@exemple.fr", "name": "Jeanne Martin", "first_name": "Jeanne", "last_name": "Martin",
    "message": "Pour vos prochains avis d'échéance.", "language": "fr",
    "url": "https://lre.exemple.fr/consent/cinv_0f1e2d3c4b5a69788796a5b4c3d2e1f0.S1gn4tur3",
    "emailed": False, "created_at": "2026-12-01T09:00:00Z", "expires_at": "2026-12-08T09:00:00Z",
    "answered_at": None, "consent_id": None, "proof": None, "withdrawn_at": None, "expired_at": None,
}
_CONSENT_PROOF_EXAMPLE = {
    "answered_at": "2026-12-02T10:15:00Z", "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0",
    "text_version": "2026-12-01", "text_language": "fr",
    "text_sha256": "9f2c0d6e2b1a4c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5", "text": "…",
    "certificate": {"sha256": "4be1c1d0a8f8e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a", "size": 30120,
                    "url": "https://lre.exemple.fr/v1/consents/invitations/cinv_0f1e2d3c4b5a69788796a5b4c3d2e1f0/certificate"},
}
_ANSWERED = {**_CONSENT_EXAMPLE, "url": None, "answered_at": "2026-12-02T10:15:00Z", "proof": _CONSENT_PROOF_EXAMPLE}
CONSENT_INVITED = register(AccountEventType(
    type="consent.invited",
    object_id_key="invitation_id",  # consent_id is the register entry's
    schema_ref="ConsentInvitation",
    label_fr="Invitation au consentement créée",
    label_en="Consent invitation created",
    description="A consent invitation was created; ``url`` is the link to send when the bridge does not e-mail it.",
    example=_CONSENT_EXAMPLE,
))
CONSENT_ACCEPTED = register(AccountEventType(
    type="consent.accepted",
    object_id_key="invitation_id",  # consent_id is the register entry's
    schema_ref="ConsentInvitation",
    label_fr="Consentement donné",
    label_en="Consent given",
    description="The person accepted on the consent page; the register entry (consent_id) and certificate exist.",
    example={**_ANSWERED, "status": "accepted", "consent_id": "cns_5a4b3c2d1e0f99887766554433221100"},
))
CONSENT_REFUSED = register(AccountEventType(
    type="consent.refused",
    object_id_key="invitation_id",  # consent_id is the register entry's
    schema_ref="ConsentInvitation",
    label_fr="Consentement refusé",
    label_en="Consent refused",
    description="The person refused on the consent page; letters held for this consent failed (consent_refused).",
    example={**_ANSWERED, "status": "refused"},
))
CONSENT_EXPIRED = register(AccountEventType(
    type="consent.expired",
    object_id_key="invitation_id",  # consent_id is the register entry's
    schema_ref="ConsentInvitation",
    label_fr="Invitation au consentement expirée",
    label_en="Consent invitation expired",
    description="No answer before the expiry: silence counts as a refusal; held letters failed (consent_expired).",
    example={**_CONSENT_EXAMPLE, "url": None, "status": "expired", "expired_at": "2026-12-08T09:00:00Z"},
))
CONSENT_WITHDRAWN = register(AccountEventType(
    type="consent.withdrawn",
    object_id_key="invitation_id",  # consent_id is the register entry's
    schema_ref="ConsentInvitation",
    label_fr="Consentement retiré",
    label_en="Consent withdrawn",
    description="The person withdrew their consent on the consent page; the register entry is revoked.",
    example={**_ANSWERED, "status": "withdrawn", "consent_id": "cns_5a4b3c2d1e0f99887766554433221100",
             "withdrawn_at": "2026-12-20T08:00:00Z"},
))


def record_account_event(session: Session, account_id: str, event_type: str, data: dict[str, Any],
                         now: datetime, *, letter_id: str | None = None) -> Event:
    """Write one account event and queue its signed deliveries, in the caller's transaction."""
    # Imported here: webhooks_out imports this module for the list of event types.
    from connector.delivery.hooks import enqueue_deliveries

    if event_type not in ACCOUNT_EVENTS:
        raise ValueError(f"undeclared account event type {event_type!r}")
    event = Event(id=new_id("evt"), account_id=account_id, letter_id=letter_id, type=event_type,
                  occurred_at=now, data=data, raw={})
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event
