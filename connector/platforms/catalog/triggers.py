"""Triggers on a letter's status (REST hooks on ``/v1/hooks``, polling on ``/v1/events``) and their samples."""

from __future__ import annotations

from typing import Any

from connector.letters.vocabulary import LetterStatus
from connector.platforms.catalog.fields import EVENT_STATUSES, STATUS_LABELS
from connector.platforms.catalog.items import CATALOG_PROOF_KINDS, trigger_item
from connector.platforms.catalog.letters import LETTER_SAMPLE
from connector.platforms.model import Choice, Endpoint, FieldType, InputField, Kind, Operation, OutputField, Text

# What a status trigger gives the next step: the event, and the letter as it was then.
EVENT_OUTPUTS = (
    OutputField("id", Text("Event ID", "ID de l'événement")),
    OutputField("type", Text("Event type", "Type d'événement")),
    OutputField("occurred_at", Text("Occurred at", "Survenu le"), FieldType.DATETIME),
    OutputField("letter_id", Text("Letter ID", "ID de la lettre")),
    OutputField("status", Text("Letter status", "Statut de la lettre")),
    OutputField("reference", Text("Reference", "Référence")),
    OutputField("recipient.email", Text("Recipient e-mail", "E-mail du destinataire")),
    OutputField("recipient.company", Text("Recipient company", "Société du destinataire")),
    OutputField("recipient.first_name", Text("Recipient first name", "Prénom du destinataire")),
    OutputField("recipient.last_name", Text("Recipient last name", "Nom du destinataire")),
    OutputField("template.name", Text("Template", "Modèle")),
    OutputField("message", Text("Message to the recipient", "Message au destinataire")),
    OutputField("documents[].filename", Text("Document file name", "Nom du document")),
    OutputField("documents[].sha256", Text("Document SHA-256", "SHA-256 du document")),
    OutputField("deposited_at", Text("Deposited at", "Déposée le"), FieldType.DATETIME),
    OutputField("completed_at", Text("Completed at", "Terminée le"), FieldType.DATETIME),
    OutputField("failure.message", Text("Failure reason", "Motif de l'échec")),
    OutputField("proof_kind", Text("Proof kind", "Type de preuve")),
    OutputField("proof_file", Text("Proof (PDF)", "Preuve (PDF)"), FieldType.FILE),
    OutputField("letter_created_at", Text("Letter created at", "Lettre créée le"), FieldType.DATETIME),
)


def event_sample(status: str) -> dict[str, Any]:
    """A trigger sample for ``letter.<status>``: the sample letter as it would be at that status."""
    final = status not in (LetterStatus.QUEUED, LetterStatus.DEPOSITED)
    letter = {
        **LETTER_SAMPLE,
        "status": status,
        "deposited_at": None if status == LetterStatus.FAILED else "2026-11-27T09:31:00Z",
        "completed_at": "2026-11-28T10:12:00Z" if final else None,
        "failure": {"code": "invalid_email", "message": "The recipient's address does not exist."}
        if status == LetterStatus.FAILED else None,
    }
    has_proof = f"letter.{status}" in CATALOG_PROOF_KINDS
    return trigger_item("evt_01JDZ4A2B3C4D5E6F7G8H9J0KM", f"letter.{status}", "2026-11-28T10:12:00Z", letter,
                        proof_file="SAMPLE FILE" if has_proof else None)


def _status_trigger(status: str, label: Text, description: Text) -> Operation:
    return Operation(
        key=f"letter_{status}",
        kind=Kind.TRIGGER,
        noun=Text("Letter Event", "Événement de lettre"),
        label=label,
        description=description,
        endpoint=Endpoint("GET", "/v1/events"),
        inputs=(REFERENCE_FILTER,),
        outputs=EVENT_OUTPUTS,
        sample=event_sample(status),
        events=(f"letter.{status}",),
        instant=True,
    )


REFERENCE_FILTER = InputField(
    "reference", Text("Only for this reference", "Seulement pour cette référence"), to="body.filters.reference",
    help=Text("Leave empty for every letter.", "Laissez vide pour toutes les lettres."),
)

STATUS_CHANGED = Operation(
    key="letter_status_changed",
    kind=Kind.TRIGGER,
    noun=Text("Letter Event", "Événement de lettre"),
    label=Text("Letter Status Changed", "Statut d'une lettre modifié"),
    description=Text("Triggers when a registered letter changes status (deposited, accepted, refused…).",
                     "Se déclenche quand une lettre recommandée change de statut (déposée, acceptée, refusée…)."),
    endpoint=Endpoint("GET", "/v1/events"),
    inputs=(
        InputField("statuses", Text("Statuses", "Statuts"), list=True,
                   choices=tuple(Choice(s, STATUS_LABELS[s]) for s in EVENT_STATUSES),
                   help=Text("Leave empty for every status.", "Laissez vide pour tous les statuts.")),
        REFERENCE_FILTER,
    ),
    outputs=EVENT_OUTPUTS,
    sample=event_sample("accepted"),
    events=tuple(f"letter.{s}" for s in EVENT_STATUSES),
    instant=True,
)

# One trigger per outcome a user acts on (the catalogue lists them after STATUS_CHANGED).
STATUS_TRIGGERS = (
    _status_trigger("accepted", Text("Letter Accepted", "Lettre acceptée"),
                    Text("Triggers when the recipient accepts a registered letter.",
                         "Se déclenche quand le destinataire accepte une lettre recommandée.")),
    _status_trigger("refused", Text("Letter Refused", "Lettre refusée"),
                    Text("Triggers when the recipient refuses a registered letter.",
                         "Se déclenche quand le destinataire refuse une lettre recommandée.")),
    _status_trigger("neglected", Text("Letter Not Claimed (15 Days)", "Lettre non réclamée (15 jours)"),
                    Text("Triggers when a registered letter was not claimed within the 15-day window.",
                         "Se déclenche quand une lettre recommandée n'a pas été réclamée sous 15 jours.")),
    _status_trigger("bounced", Text("Letter Notification Bounced", "Notification de lettre en échec"),
                    Text("Triggers when the notification e-mail of a registered letter bounced.",
                         "Se déclenche quand l'e-mail de notification d'une lettre recommandée échoue.")),
)
