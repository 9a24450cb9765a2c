"""The bridge's words, defined once: letter statuses, proof kinds, recipient types, sandbox outcomes,
job and hook statuses, with their French and English labels.

Everything else (the API's validation and OpenAPI enums, the provider adapters, the catalogue the
three platform apps are generated from, the evidence summary a judge reads) imports from here, so a
word cannot drift between them. Framework-free: no Flask, no database.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Label(NamedTuple):
    """A word for people, in English and French."""

    en: str
    fr: str


class LetterStatus(StrEnum):
    """Normalised letter statuses. ``queued`` and ``failed`` are the bridge's own."""

    QUEUED = "queued"
    DEPOSITED = "deposited"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NEGLECTED = "neglected"
    BOUNCED = "bounced"
    FAILED = "failed"


FINAL_STATUSES = frozenset(
    {LetterStatus.ACCEPTED, LetterStatus.REFUSED, LetterStatus.NEGLECTED, LetterStatus.BOUNCED, LetterStatus.FAILED}
)

# Labels on screens and in the platform apps (short).
STATUS_LABELS: dict[LetterStatus, Label] = {
    LetterStatus.QUEUED: Label("Queued", "En file d'attente"),
    LetterStatus.DEPOSITED: Label("Deposited (proof of sending issued)", "Déposée (preuve de dépôt émise)"),
    LetterStatus.ACCEPTED: Label("Accepted by the recipient", "Acceptée par le destinataire"),
    LetterStatus.REFUSED: Label("Refused by the recipient", "Refusée par le destinataire"),
    LetterStatus.NEGLECTED: Label("Not claimed within 15 days", "Non réclamée sous 15 jours"),
    LetterStatus.BOUNCED: Label("Notification e-mail bounced", "E-mail de notification en échec"),
    LetterStatus.FAILED: Label("Could not be sent", "Envoi impossible"),
}

# The same statuses as a sentence in an evidence package read by a lawyer or a judge ("la lettre a
# été …"): fuller wording, same meaning.
STATUS_PHRASES: dict[LetterStatus, Label] = {
    LetterStatus.QUEUED: Label("queued", "en attente d'envoi"),
    LetterStatus.DEPOSITED: Label("deposited with the qualified provider", "déposée chez le prestataire qualifié"),
    LetterStatus.ACCEPTED: Label("accepted by the recipient", "acceptée par le destinataire"),
    LetterStatus.REFUSED: Label("refused by the recipient", "refusée par le destinataire"),
    LetterStatus.NEGLECTED: Label("not claimed within 15 days", "non réclamée dans le délai de 15 jours"),
    LetterStatus.BOUNCED: Label("notification could not be delivered", "notification non distribuable"),
    LetterStatus.FAILED: Label("sending failed", "échec de l'envoi"),
}


class ProofKind(StrEnum):
    """The proof issued at each step (file names and ``/v1/letters/<id>/proofs/<kind>`` use these)."""

    DEPOSIT = "deposit"
    ACCEPTANCE = "acceptance"
    REFUSAL = "refusal"
    NEGLIGENCE = "negligence"
    BOUNCE = "bounce"
    # Not a provider's: the recipient's consent certificate, bound to each letter sent on it (issue 18).
    CONSENT = "consent"


PROOF_KIND_BY_STATUS: dict[LetterStatus, ProofKind] = {
    LetterStatus.DEPOSITED: ProofKind.DEPOSIT,
    LetterStatus.ACCEPTED: ProofKind.ACCEPTANCE,
    LetterStatus.REFUSED: ProofKind.REFUSAL,
    LetterStatus.NEGLECTED: ProofKind.NEGLIGENCE,
    LetterStatus.BOUNCED: ProofKind.BOUNCE,
}

PROOF_LABELS: dict[ProofKind, Label] = {
    ProofKind.DEPOSIT: Label("Proof of deposit", "Preuve de dépôt"),
    ProofKind.ACCEPTANCE: Label("Proof of receipt (acceptance)", "Preuve de réception (acceptation)"),
    ProofKind.REFUSAL: Label("Proof of refusal", "Preuve de refus"),
    ProofKind.NEGLIGENCE: Label("Proof of non-claim", "Preuve de négligence (non-réclamation)"),
    ProofKind.BOUNCE: Label("Proof of non-delivery", "Preuve de non-distribution"),
    ProofKind.CONSENT: Label("Recipient's consent certificate", "Certificat de consentement du destinataire"),
}


class RecipientType(StrEnum):
    PROFESSIONAL = "professional"
    INDIVIDUAL = "individual"
    ADMINISTRATION = "administration"
    ASSOCIATION = "association"


RECIPIENT_TYPE_LABELS: dict[RecipientType, Label] = {
    RecipientType.PROFESSIONAL: Label("Professional (company, sole trader)", "Professionnel (société, entrepreneur)"),
    RecipientType.INDIVIDUAL: Label("Individual (needs prior consent)", "Particulier (consentement préalable requis)"),
    RecipientType.ADMINISTRATION: Label("Public administration", "Administration"),
    RecipientType.ASSOCIATION: Label("Association", "Association"),
}

# CPCE art. L.100: a non-professional must have agreed beforehand to receive LRE.
CONSENT_REQUIRED = frozenset({RecipientType.INDIVIDUAL, RecipientType.ADMINISTRATION, RecipientType.ASSOCIATION})


class SandboxOutcome(StrEnum):
    """What the built-in sandbox provider makes of a letter (``sandbox_outcome``)."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    NEGLECTED = "neglected"
    BOUNCED = "bounced"
    FAILED = "failed"


SANDBOX_OUTCOME_LABELS: dict[SandboxOutcome, Label] = {
    SandboxOutcome.ACCEPTED: Label("Accepted", "Acceptée"),
    SandboxOutcome.REFUSED: Label("Refused", "Refusée"),
    SandboxOutcome.NEGLECTED: Label("Not claimed within 15 days", "Non réclamée sous 15 jours"),
    SandboxOutcome.BOUNCED: Label("E-mail bounced", "E-mail en échec"),
    SandboxOutcome.FAILED: Label("Could not be sent", "Envoi impossible"),
}


class JobStatus(StrEnum):
    """An outbox job's state."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class HookStatus(StrEnum):
    """A webhook subscription's state."""

    ACTIVE = "active"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    """A webhook delivery's state (one event to one hook)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # retries exhausted, or the subscription answered 410 Gone
    CANCELLED = "cancelled"  # the hook was deleted or disabled before this one was delivered
