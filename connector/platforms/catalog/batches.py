"""Batches (issue 16): one template to every row of a list (Zapier line items, a Make array, n8n items)."""

from __future__ import annotations

from connector.platforms.catalog.fields import (
    IDEMPOTENCY_KEY,
    LEGAL_BASIS,
    MESSAGE,
    RECIPIENT_TYPES,
    REFERENCE,
    SANDBOX_OUTCOME,
    TEMPLATE,
)
from connector.platforms.model import (
    Dynamic,
    Endpoint,
    FieldType,
    Group,
    InputField,
    Kind,
    Operation,
    OutputField,
    Text,
)

BATCH_ROW_CHILDREN = (
    InputField("email", Text("Recipient e-mail", "E-mail du destinataire"), FieldType.EMAIL, required=True),
    InputField("type", Text("Recipient type", "Type de destinataire"), choices=RECIPIENT_TYPES,
               help=Text("Empty: the batch's recipient type.", "Vide : le type de destinataire du lot.")),
    InputField("company", Text("Company", "Société")),
    InputField("first_name", Text("First name", "Prénom")),
    InputField("last_name", Text("Last name", "Nom")),
    InputField("reference", Text("Reference of this letter", "Référence de cette lettre")),
    InputField("destinataire_nom", Text("Name on the letter", "Nom sur la lettre")),
    InputField("destinataire_adresse", Text("Address on the letter", "Adresse sur la lettre"), FieldType.TEXT),
    # The row's own template values, each cell as it is (quotes, semicolons, new lines): the template's
    # fields where the platform can list them (Zapier line-item children), else key/value pairs. They
    # reach the bridge as the row's ``data.<key>`` columns, never through JSON a user writes.
    InputField("values", Text("Template values of this row", "Valeurs du modèle pour cette ligne"), FieldType.OBJECT,
               dynamic=Dynamic.TEMPLATE_FIELDS,
               help=Text("This row's own values of the template's fields (key: the field, e.g. lots; value: the "
                         "cell). A list field takes one item per line.",
                         "Les valeurs propres à cette ligne (clé : le champ, par ex. lots ; valeur : la cellule). "
                         "Un champ liste prend un élément par ligne.")),
    # Before ``values``: one JSON text. Kept so that existing Zaps and scenarios that fill it still run.
    InputField("data", Text("Other template values of this row (JSON, former field)",
                            "Autres valeurs du modèle pour cette ligne (JSON, ancien champ)"), FieldType.TEXT,
               placeholder='{"lots": ["Lot 12 : appartement"]}', group=Group.ADVANCED,
               help=Text("Prefer the template values of this row: a cell holding a quote breaks this JSON.",
                         "Préférez les valeurs du modèle pour cette ligne : une cellule contenant un guillemet "
                         "casse ce JSON.")),
)

BATCH_OUTPUTS = (
    OutputField("id", Text("Batch ID", "ID du lot")),
    OutputField("status", Text("Batch status", "Statut du lot")),
    OutputField("total", Text("Letters", "Lettres"), FieldType.INTEGER),
    OutputField("counts.pending", Text("Letters being made", "Lettres en préparation"), FieldType.INTEGER),
    OutputField("counts.submitted", Text("Letters submitted", "Lettres transmises"), FieldType.INTEGER),
    OutputField("counts.accepted", Text("Letters accepted", "Lettres acceptées"), FieldType.INTEGER),
    OutputField("counts.failed", Text("Letters failed", "Lettres en échec"), FieldType.INTEGER),
    OutputField("progress.final", Text("Share of letters at a final status", "Part des lettres à un statut final"),
                FieldType.NUMBER),
    OutputField("reference", Text("Reference", "Référence")),
    OutputField("created_at", Text("Created at", "Créé le"), FieldType.DATETIME),
    OutputField("links.self", Text("Batch URL (API)", "URL du lot (API)")),
    OutputField("links.report", Text("Bordereau URL (API)", "URL du bordereau (API)")),
)

SEND_BATCH = Operation(
    key="send_batch",
    kind=Kind.CREATE,
    noun=Text("Batch", "Lot"),
    label=Text("Send a Batch of Registered Letters", "Envoyer un lot de LRE"),
    description=Text(
        "Sends one letter from a template to every row: e.g. an AG convocation to every co-owner. "
        "Every row is checked first; one bad row stops the whole batch, and none is sent.",
        "Envoie une lettre depuis un modèle à chaque ligne : par ex. la convocation à l'AG "
        "à chaque copropriétaire. Toutes les lignes sont vérifiées d'abord ; une seule erreur arrête le lot, "
        "rien n'est envoyé.",
    ),
    endpoint=Endpoint("POST", "/v1/batches"),
    inputs=(
        InputField("template", TEMPLATE.label, required=True, to="body.template", dynamic=Dynamic.TEMPLATES,
                   help=Text("The letter template every row is filled into.",
                             "Le modèle de lettre rempli pour chaque ligne.")),
        InputField("common_data", Text("Template values common to every letter", "Valeurs du modèle communes à "
                                       "toutes les lettres"), FieldType.OBJECT, to="body.data",
                   help=Text("Key/value pairs, e.g. date_assemblee, heure_assemblee, lieu_assemblee, "
                             "ordre_du_jour; a row's own value wins.",
                             "Paires clé/valeur, par ex. date_assemblee, heure_assemblee, lieu_assemblee, "
                             "ordre_du_jour ; la valeur propre à une ligne l'emporte.")),
        InputField("rows", Text("Recipients (one per row)", "Destinataires (un par ligne)"),
                   required=True, to="body.rows", children=BATCH_ROW_CHILDREN),
        # A list of files without a target: each exporter sends it as the body's ``attachments``
        # documents ({filename, url} or {filename, content_base64}).
        InputField("attachments", Text("Attachments for every letter", "Pièces jointes à chaque lettre"),
                   FieldType.FILE, list=True,
                   help=Text("PDFs joined to every letter (ordre du jour, comptes…); stored once.",
                             "PDF joints à chaque lettre (ordre du jour, comptes…) ; stockés une fois.")),
        InputField("recipient_type", Text("Recipient type", "Type de destinataire"), to="body.recipient_type",
                   choices=RECIPIENT_TYPES, default="professional",
                   help=Text("For rows that give none. Individuals need their prior consent (CPCE art. L.100).",
                             "Pour les lignes qui n'en donnent pas. Un particulier doit avoir consenti (CPCE "
                             "art. L.100).")),
        InputField("legal_basis", LEGAL_BASIS.label, to="body.legal_basis", choices=LEGAL_BASIS.choices,
                   help=Text("For rows whose recipients are individuals: consent (each must have consented), or "
                             "the co-owner basis for a syndic's notifications (enabled for your account; "
                             "co-owners who asked for paper are refused). Empty: as for one letter.",
                             "Pour les lignes dont le destinataire est un particulier : consentement (chacun doit "
                             "avoir consenti) ou la base copropriété pour les notifications du syndic (activée "
                             "pour votre compte ; les copropriétaires qui ont demandé le papier sont refusés). "
                             "Vide : comme pour une lettre.")),
        MESSAGE, REFERENCE,
        InputField("allow_short_notice", Text("Urgent assembly (skip the 21-day notice check)",
                                              "Assemblée urgente (sans le contrôle du délai de 21 jours)"),
                   FieldType.BOOLEAN, to="body.allow_short_notice", group=Group.ADVANCED),
        IDEMPOTENCY_KEY, SANDBOX_OUTCOME,
    ),
    outputs=BATCH_OUTPUTS,
    # Every platform: Zapier line items, Make an array of collections, n8n every input item as one row.
    sample={
        "id": "bat_3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c", "object": "batch", "status": "processing", "total": 412,
        "counts": {"pending": 412, "rendered": 0, "submitted": 0, "queued": 0, "deposited": 0, "accepted": 0,
                   "refused": 0, "neglected": 0, "bounced": 0, "failed": 0, "cancelled": 0},
        "progress": {"rendered": 0.0, "submitted": 0.0, "final": 0.0},
        "reference": "AG-2027", "created_at": "2026-12-01T09:00:00Z",
        "links": {"self": "https://lre.exemple.fr/v1/batches/bat_3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c",
                  "report": "https://lre.exemple.fr/v1/batches/bat_3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c/report"},
    },
)
