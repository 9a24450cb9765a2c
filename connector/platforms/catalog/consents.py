"""The consent register (record, search, revoke) and consent collection (invite, the answer as a trigger)."""

from __future__ import annotations

from typing import Any

from connector.delivery.events import ACCOUNT_EVENTS
from connector.platforms.catalog.fields import IDEMPOTENCY_KEY, LIMIT, NOT_ZAPIER
from connector.platforms.catalog.items import ACCOUNT_EVENT_OUTPUTS, SAMPLE_EVENT_ID, account_event_item
from connector.platforms.model import Choice, Endpoint, FieldType, InputField, Kind, Operation, OutputField, Text

CONSENT_METHOD_CHOICES = (
    Choice("written", Text("Signed paper form", "Formulaire papier signé")),
    Choice("electronic_form", Text("Online form", "Formulaire en ligne")),
    Choice("email", Text("E-mail", "E-mail")),
    Choice("contract_clause", Text("Clause of a contract", "Clause d'un contrat")),
    Choice("other", Text("Other (say how in the note)", "Autre (précisez dans la note)")),
)
CONSENT_OUTPUTS = (
    OutputField("id", Text("Consent ID", "ID du consentement")),
    OutputField("email", Text("E-mail", "E-mail")),
    OutputField("first_name", Text("First name", "Prénom")),
    OutputField("last_name", Text("Last name", "Nom")),
    OutputField("method", Text("How it was obtained", "Mode de recueil")),
    OutputField("obtained_at", Text("Obtained at", "Recueilli le"), FieldType.DATETIME),
    OutputField("recorded_by", Text("Recorded by", "Enregistré par")),
    OutputField("note", Text("Note", "Note")),
    OutputField("status", Text("Status (active or revoked)", "Statut (actif ou révoqué)")),
    OutputField("created_at", Text("Recorded at", "Enregistré le"), FieldType.DATETIME),
    OutputField("revoked_at", Text("Revoked at", "Révoqué le"), FieldType.DATETIME),
    OutputField("revoked_by", Text("Revoked by", "Révoqué par")),
)
CONSENT_SAMPLE: dict[str, Any] = {
    "id": "con_01JDZ5B7C8D9E0F1G2H3J4K5LM", "object": "consent", "email": "jeanne.martin@exemple.fr",
    "first_name": "Jeanne", "last_name": "Martin", "method": "electronic_form",
    "obtained_at": "2026-11-20T14:05:00Z", "recorded_by": "Cabinet Durand", "note": None, "proof": None,
    "status": "active", "created_at": "2026-11-27T09:00:00Z", "revoked_at": None, "revoked_by": None,
}

RECORD_CONSENT = Operation(
    key="record_consent",
    kind=Kind.CREATE,
    noun=Text("Consent", "Consentement"),
    label=Text("Record a Recipient's Consent", "Enregistrer le consentement d'un destinataire"),
    description=Text("Records an individual's prior consent to receive registered e-mail (CPCE art. L.100).",
                     "Enregistre le consentement préalable d'un particulier à recevoir des LRE (CPCE art. L.100)."),
    endpoint=Endpoint("POST", "/v1/consents"),
    inputs=(
        InputField("email", Text("Recipient e-mail", "E-mail du destinataire"), FieldType.EMAIL, required=True,
                   to="body.email", placeholder="jeanne.martin@exemple.fr"),
        InputField("first_name", Text("First name", "Prénom"), to="body.first_name"),
        InputField("last_name", Text("Last name", "Nom"), to="body.last_name"),
        InputField("method", Text("How it was obtained", "Mode de recueil"), required=True, to="body.method",
                   choices=CONSENT_METHOD_CHOICES),
        InputField("obtained_at", Text("Obtained at", "Recueilli le"), FieldType.DATETIME, required=True,
                   to="body.obtained_at", placeholder="2026-11-20T14:05:00+01:00",
                   help=Text("Date and time with its time zone; not in the future.",
                             "Date et heure avec le fuseau horaire ; pas dans le futur.")),
        InputField("recorded_by", Text("Recorded by", "Enregistré par"), required=True, to="body.recorded_by",
                   placeholder="Cabinet Durand"),
        InputField("note", Text("Note", "Note"), FieldType.TEXT, to="body.note"),
        IDEMPOTENCY_KEY,
    ),
    outputs=CONSENT_OUTPUTS,
    sample=CONSENT_SAMPLE,
    platforms=NOT_ZAPIER,
)

LIST_CONSENTS = Operation(
    key="list_consents",
    kind=Kind.SEARCH,
    noun=Text("Consent", "Consentement"),
    label=Text("Search Consents", "Rechercher des consentements"),
    description=Text("Lists the consents in your register, newest first, by e-mail or status.",
                     "Liste les consentements de votre registre, des plus récents aux plus anciens, "
                     "par e-mail ou statut."),
    endpoint=Endpoint("GET", "/v1/consents"),
    inputs=(
        InputField("email", Text("Recipient e-mail", "E-mail du destinataire"), FieldType.EMAIL, to="query.email"),
        InputField("status", Text("Status", "Statut"), to="query.status",
                   choices=(Choice("active", Text("Active", "Actif")), Choice("revoked", Text("Revoked", "Révoqué")))),
        LIMIT,
    ),
    outputs=CONSENT_OUTPUTS,
    sample=CONSENT_SAMPLE,
    platforms=NOT_ZAPIER,
)

REVOKE_CONSENT = Operation(
    key="revoke_consent",
    kind=Kind.CREATE,
    noun=Text("Consent", "Consentement"),
    label=Text("Revoke a Consent", "Révoquer un consentement"),
    description=Text("Revokes a consent; it stays in the register with who revoked it and when.",
                     "Révoque un consentement ; il reste au registre avec l'auteur et la date de la révocation."),
    endpoint=Endpoint("DELETE", "/v1/consents/{consent_id}"),
    inputs=(
        InputField("consent_id", Text("Consent ID", "ID du consentement"), required=True, to="path.consent_id",
                   placeholder="con_01JDZ5B7C8D9E0F1G2H3J4K5LM"),
        InputField("revoked_by", Text("Revoked by", "Révoqué par"), to="query.revoked_by"),
    ),
    outputs=CONSENT_OUTPUTS,
    sample={**CONSENT_SAMPLE, "status": "revoked", "revoked_at": "2026-11-28T08:00:00Z",
            "revoked_by": "Cabinet Durand"},
    platforms=NOT_ZAPIER,
)

# --- consent collection (issue 18): invite a recipient, and the answer as a trigger ----------------

CONSENT_INVITATION_OUTPUTS = (
    OutputField("id", Text("Invitation ID", "ID de l'invitation")),
    OutputField("status", Text("Status", "Statut")),
    OutputField("email", Text("E-mail", "E-mail")),
    OutputField("name", Text("Name", "Nom")),
    OutputField("url", Text("Consent link (send it to the person)", "Lien de consentement (à envoyer à la personne)")),
    OutputField("emailed", Text("E-mailed by the bridge", "Envoyé par e-mail par le bridge"), FieldType.BOOLEAN),
    OutputField("expires_at", Text("Expires at", "Expire le"), FieldType.DATETIME),
    OutputField("answered_at", Text("Answered at", "Répondu le"), FieldType.DATETIME),
    OutputField("consent_id", Text("Consent ID (register)", "ID du consentement (registre)")),
    OutputField("proof.ip_address", Text("Answer's IP address", "Adresse IP de la réponse")),
    OutputField("proof.text_sha256", Text("SHA-256 of the text shown", "SHA-256 du texte présenté")),
    OutputField("proof.certificate.url", Text("Certificate (PDF) URL", "URL du certificat (PDF)")),
    OutputField("created_at", Text("Created at", "Créée le"), FieldType.DATETIME),
)
CONSENT_INVITATION_SAMPLE: dict[str, Any] = {
    "id": "cinv_0f1e2d3c4b5a69788796a5b4c3d2e1f0", "object": "consent_invitation", "status": "pending",
    "email": "jeanne.martin@exemple.fr", "name": "Jeanne Martin", "first_name": "Jeanne", "last_name": "Martin",
    "message": "Pour vos prochains avis d'échéance.", "language": "fr",
    "url": "https://lre.exemple.fr/consent/cinv_0f1e2d3c4b5a69788796a5b4c3d2e1f0.S1gn4tur3",
    "emailed": False, "created_at": "2026-12-01T09:00:00Z", "expires_at": "2026-12-08T09:00:00Z",
    "answered_at": None, "consent_id": None, "proof": None, "withdrawn_at": None, "expired_at": None,
}

INVITE_CONSENT = Operation(
    key="invite_consent",
    kind=Kind.CREATE,
    noun=Text("Consent Invitation", "Invitation au consentement"),
    label=Text("Invite a Recipient to Consent", "Inviter un destinataire à consentir"),
    description=Text("Asks a person for their consent to receive registered e-mail (CPCE art. L.100) on a page "
                     "the bridge hosts; the answer and its proof go to the register.",
                     "Demande à une personne son consentement à recevoir des LRE (CPCE art. L.100) sur une page "
                     "hébergée par le bridge ; la réponse et sa preuve vont au registre."),
    endpoint=Endpoint("POST", "/v1/consents/invitations"),
    inputs=(
        InputField("email", Text("Recipient e-mail", "E-mail du destinataire"), FieldType.EMAIL, required=True,
                   to="body.email", placeholder="jeanne.martin@exemple.fr"),
        InputField("name", Text("Name", "Nom"), required=True, to="body.name", placeholder="Jeanne Martin",
                   help=Text("How the consent page addresses the person.",
                             "Comment la page de consentement s'adresse à la personne.")),
        InputField("message", Text("Your message", "Votre message"), FieldType.TEXT, to="body.message",
                   help=Text("Shown on the consent page (why you ask).",
                             "Affiché sur la page de consentement (pourquoi vous demandez).")),
        InputField("expires_in_days", Text("Days to answer (3 to 30)", "Jours pour répondre (3 à 30)"),
                   FieldType.INTEGER, to="body.expires_in_days", default="7",
                   help=Text("Without an answer by then, the request counts as refused.",
                             "Sans réponse à l'échéance, la demande vaut refus.")),
        InputField("language", Text("Page language", "Langue de la page"), to="body.language", default="fr",
                   choices=(Choice("fr", Text("French", "Français")), Choice("en", Text("English", "Anglais")))),
        IDEMPOTENCY_KEY,
    ),
    outputs=CONSENT_INVITATION_OUTPUTS,
    sample=CONSENT_INVITATION_SAMPLE,
)

CONSENT_ANSWERED = Operation(
    key="consent_answered",
    kind=Kind.TRIGGER,
    noun=Text("Consent Invitation", "Invitation au consentement"),
    label=Text("Consent Answered", "Réponse à une demande de consentement"),
    description=Text("Triggers when a person accepts, refuses or withdraws consent, or lets an invitation expire.",
                     "Se déclenche quand une personne accepte, refuse ou retire son consentement, ou laisse "
                     "expirer l'invitation."),
    endpoint=Endpoint("GET", "/v1/events"),
    inputs=(),
    # The item is the event (its own id, so that Zapier, which de-duplicates by id, sees an acceptance
    # and a later withdrawal of one invitation as two items) with the invitation's fields.
    outputs=ACCOUNT_EVENT_OUTPUTS + (OutputField("invitation_id", Text("Invitation ID", "ID de l'invitation")),)
    + tuple(o for o in CONSENT_INVITATION_OUTPUTS if o.key not in ("id", "url")),
    sample=account_event_item(SAMPLE_EVENT_ID, "consent.accepted", "2026-12-02T10:15:00Z",
                              ACCOUNT_EVENTS["consent.accepted"].example),
    events=("consent.accepted", "consent.refused", "consent.expired", "consent.withdrawn"),
    instant=True,
)
