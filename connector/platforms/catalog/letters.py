"""Letters: send one from a template or with a PDF, find one, search them; the letter's outputs and sample."""

from __future__ import annotations

from typing import Any

from connector.platforms.catalog.fields import (
    HOLD_UNTIL_CONSENT,
    IDEMPOTENCY_KEY,
    LEGAL_BASIS,
    LIMIT,
    MESSAGE,
    METADATA,
    NOT_ZAPIER,
    RECIPIENT,
    REFERENCE,
    SANDBOX_OUTCOME,
    SENDER_OTP,
    STATUS_LABELS,
    TEMPLATE,
    TEMPLATE_FIELDS,
)
from connector.platforms.model import Choice, Endpoint, FieldType, InputField, Kind, Operation, OutputField, Text

LETTER_OUTPUTS = (
    OutputField("id", Text("Letter ID", "ID de la lettre")),
    OutputField("status", Text("Status", "Statut")),
    OutputField("reference", Text("Reference", "Référence")),
    OutputField("recipient.type", Text("Recipient type", "Type de destinataire")),
    OutputField("recipient.email", Text("Recipient e-mail", "E-mail du destinataire")),
    OutputField("recipient.company", Text("Recipient company", "Société du destinataire")),
    OutputField("recipient.first_name", Text("Recipient first name", "Prénom du destinataire")),
    OutputField("recipient.last_name", Text("Recipient last name", "Nom du destinataire")),
    OutputField("template.name", Text("Template", "Modèle")),
    OutputField("template.version", Text("Template version", "Version du modèle"), FieldType.INTEGER),
    OutputField("documents[].filename", Text("Document file name", "Nom du document")),
    OutputField("documents[].sha256", Text("Document SHA-256", "SHA-256 du document")),
    OutputField("created_at", Text("Created at", "Créée le"), FieldType.DATETIME),
    OutputField("deposited_at", Text("Deposited at", "Déposée le"), FieldType.DATETIME),
    OutputField("completed_at", Text("Completed at", "Terminée le"), FieldType.DATETIME),
    OutputField("failure.message", Text("Failure reason", "Motif de l'échec")),
    OutputField("links.self", Text("Letter URL (API)", "URL de la lettre (API)")),
    OutputField("document_file", Text("Letter as sent (PDF)", "Lettre telle qu'envoyée (PDF)"), FieldType.FILE),
)

LETTER_SAMPLE: dict[str, Any] = {
    "id": "let_01JDZ3K8Q6X5W2V9T4R7N1M0PA",
    "object": "letter",
    "status": "queued",
    "reference": "DOSSIER-42",
    "recipient": {"type": "professional", "email": "compta@exemple.fr", "first_name": None,
                  "last_name": None, "company": "Exemple SARL"},
    "message": "Une lettre recommandée électronique vous attend.",
    "metadata": {},
    "documents": [{"id": "doc_01JDZ3K8Q6", "filename": "mise-en-demeure.pdf", "size": 48213,
                   "sha256": "9f2c4e8a1b7d3f6e5c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"}],
    "template": {"name": "mise_en_demeure", "version": 1},
    "provider": "sandbox",
    "provider_letter_id": None,
    "sandbox_outcome": None,
    "failure": None,
    "proofs": [],
    "created_at": "2026-11-27T09:30:00Z",
    "updated_at": "2026-11-27T09:30:00Z",
    "deposited_at": None,
    "completed_at": None,
    "links": {"self": "https://lre.exemple.fr/v1/letters/let_01JDZ3K8Q6X5W2V9T4R7N1M0PA",
              "document": "https://lre.exemple.fr/v1/letters/let_01JDZ3K8Q6X5W2V9T4R7N1M0PA/document",
              "evidence": "https://lre.exemple.fr/v1/letters/let_01JDZ3K8Q6X5W2V9T4R7N1M0PA/evidence"},
    "document_file": "SAMPLE FILE",
}

SEND_FROM_TEMPLATE = Operation(
    key="send_letter_from_template",
    kind=Kind.CREATE,
    noun=Text("Letter", "Lettre"),
    label=Text("Send a Registered Letter from a Template", "Envoyer une LRE depuis un modèle"),
    description=Text(
        "Fills one of your letter templates, renders the PDF and sends it as a qualified electronic "
        "registered letter (LRE).",
        "Remplit un de vos modèles, produit le PDF et l'envoie en lettre recommandée électronique qualifiée.",
    ),
    endpoint=Endpoint("POST", "/v1/letters"),
    inputs=(TEMPLATE, TEMPLATE_FIELDS, *RECIPIENT, LEGAL_BASIS, MESSAGE, REFERENCE, SENDER_OTP, METADATA,
            IDEMPOTENCY_KEY, SANDBOX_OUTCOME, HOLD_UNTIL_CONSENT),
    outputs=LETTER_OUTPUTS,
    sample=LETTER_SAMPLE,
)

SEND_PDF = Operation(
    key="send_letter_with_pdf",
    kind=Kind.CREATE,
    noun=Text("Letter", "Lettre"),
    label=Text("Send a Registered Letter with a PDF", "Envoyer une LRE avec un PDF"),
    description=Text(
        "Sends a PDF you already have (from a previous step) as a qualified electronic registered letter.",
        "Envoie un PDF existant (issu d'une étape précédente) en lettre recommandée électronique qualifiée.",
    ),
    endpoint=Endpoint("POST", "/v1/letters"),
    inputs=(
        InputField("pdf", Text("PDF document", "Document PDF"), FieldType.FILE, required=True,
                   to="body.documents.0.url",
                   help=Text("A PDF file from a previous step (or its URL); the bridge downloads it.",
                             "Un fichier PDF d'une étape précédente (ou son URL) ; le bridge le télécharge.")),
        InputField("pdf_filename", Text("File name", "Nom du fichier"), to="body.documents.0.filename",
                   default="lettre.pdf"),
        *RECIPIENT, LEGAL_BASIS, MESSAGE, REFERENCE, SENDER_OTP, METADATA, IDEMPOTENCY_KEY, SANDBOX_OUTCOME,
        HOLD_UNTIL_CONSENT,
    ),
    outputs=LETTER_OUTPUTS,
    sample={**LETTER_SAMPLE, "template": None,
            "documents": [{**LETTER_SAMPLE["documents"][0], "filename": "lettre.pdf"}]},
)

FIND_LETTER = Operation(
    key="find_letter",
    kind=Kind.SEARCH,
    noun=Text("Letter", "Lettre"),
    label=Text("Find a Letter", "Trouver une lettre"),
    description=Text("Finds a registered letter by its ID or by your reference (the most recent one).",
                     "Trouve une lettre recommandée par son ID ou par votre référence (la plus récente)."),
    endpoint=Endpoint("GET", "/v1/letters"),
    inputs=(
        InputField("letter_id", Text("Letter ID", "ID de la lettre"), to="path.letter_id",
                   placeholder="let_01JDZ3K8Q6X5W2V9T4R7N1M0PA"),
        InputField("reference", Text("Your reference", "Votre référence"), to="query.reference",
                   help=Text("Used when no ID is given.", "Utilisée quand aucun ID n'est donné.")),
    ),
    outputs=LETTER_OUTPUTS,
    sample=LETTER_SAMPLE,
)

SEARCH_LETTERS = Operation(
    key="search_letters",
    kind=Kind.SEARCH,
    noun=Text("Letter", "Lettre"),
    label=Text("Search Letters", "Rechercher des lettres"),
    description=Text("Lists your registered letters, newest first, by reference, status, recipient or date.",
                     "Liste vos lettres recommandées, des plus récentes aux plus anciennes, par référence, "
                     "statut, destinataire ou date."),
    endpoint=Endpoint("GET", "/v1/letters"),
    inputs=(
        InputField("reference", Text("Your reference", "Votre référence"), to="query.reference",
                   placeholder="DOSSIER-42"),
        InputField("status", Text("Status", "Statut"), to="query.status",
                   choices=tuple(Choice(s, label) for s, label in STATUS_LABELS.items()),
                   help=Text("Leave empty for every status.", "Laissez vide pour tous les statuts.")),
        InputField("recipient", Text("Recipient (e-mail, last name or company)",
                                     "Destinataire (e-mail, nom ou société)"), to="query.recipient",
                   help=Text("Part of the e-mail, last name or company.",
                             "Une partie de l'e-mail, du nom ou de la société.")),
        InputField("created_from", Text("Created on or after", "Créée à partir du"), FieldType.DATETIME,
                   to="query.from", placeholder="2026-11-01"),
        InputField("created_to", Text("Created on or before", "Créée jusqu'au"), FieldType.DATETIME,
                   to="query.to", placeholder="2026-11-30"),
        LIMIT,
    ),
    outputs=tuple(o for o in LETTER_OUTPUTS if o.type != FieldType.FILE),
    sample=LETTER_SAMPLE,
    platforms=NOT_ZAPIER,
)
