"""Downloads of what proves a letter: a proof, the document as sent, the sealed evidence package."""

from __future__ import annotations

from connector.platforms.catalog.fields import LETTER_ID, NOT_ZAPIER
from connector.platforms.model import Choice, Endpoint, FieldType, Group, InputField, Kind, Operation, OutputField, Text

FILE_OUTPUTS = (
    OutputField("filename", Text("File name", "Nom du fichier")),
    OutputField("file", Text("File", "Fichier"), FieldType.FILE),
)
PROOF_KIND_LABELS: dict[str, Text] = {
    "deposit": Text("Proof of deposit", "Preuve de dépôt"),
    "acceptance": Text("Proof of receipt (acceptance)", "Preuve de réception (acceptation)"),
    "refusal": Text("Proof of refusal", "Preuve de refus"),
    "negligence": Text("Proof of non-claim", "Preuve de négligence (non-réclamation)"),
    "bounce": Text("Proof of non-delivery", "Preuve de non-distribution"),
}

DOWNLOAD_PROOF = Operation(
    key="download_proof",
    kind=Kind.CREATE,
    noun=Text("Proof", "Preuve"),
    label=Text("Download a Proof", "Télécharger une preuve"),
    description=Text("Downloads a proof PDF of a letter (deposit, receipt, refusal…) as the provider issued it.",
                     "Télécharge une preuve PDF d'une lettre (dépôt, réception, refus…) telle qu'émise."),
    endpoint=Endpoint("GET", "/v1/letters/{letter_id}/proofs/{kind}"),
    inputs=(
        LETTER_ID,
        InputField("kind", Text("Proof", "Preuve"), required=True, to="path.kind", default="acceptance",
                   choices=tuple(Choice(k, label) for k, label in PROOF_KIND_LABELS.items())),
    ),
    outputs=FILE_OUTPUTS,
    sample={"filename": "preuve-acceptation.pdf", "file": "SAMPLE FILE"},
    platforms=NOT_ZAPIER,
    file_response=True,
)

DOWNLOAD_DOCUMENT = Operation(
    key="download_document",
    kind=Kind.CREATE,
    noun=Text("Document", "Document"),
    label=Text("Download the Letter's Document", "Télécharger le document de la lettre"),
    description=Text("Downloads the PDF exactly as it was sent.", "Télécharge le PDF tel qu'il a été envoyé."),
    endpoint=Endpoint("GET", "/v1/letters/{letter_id}/document"),
    inputs=(
        LETTER_ID,
        InputField("position", Text("Document number", "Numéro du document"), FieldType.INTEGER,
                   to="query.position", default="0", group=Group.ADVANCED,
                   help=Text("0 for the main document, 1 for the first attachment…",
                             "0 pour le document principal, 1 pour la première pièce jointe…")),
    ),
    outputs=FILE_OUTPUTS,
    sample={"filename": "mise-en-demeure.pdf", "file": "SAMPLE FILE"},
    platforms=NOT_ZAPIER,
    file_response=True,
)

DOWNLOAD_EVIDENCE = Operation(
    key="download_evidence",
    kind=Kind.CREATE,
    noun=Text("Evidence Package", "Dossier de preuve"),
    label=Text("Download the Evidence Package", "Télécharger le dossier de preuve"),
    description=Text("Downloads the sealed evidence package (zip): documents, proofs, journal and seal.",
                     "Télécharge le dossier de preuve scellé (zip) : documents, preuves, journal et sceau."),
    endpoint=Endpoint("GET", "/v1/letters/{letter_id}/evidence"),
    inputs=(LETTER_ID,),
    outputs=FILE_OUTPUTS,
    sample={"filename": "let_01JDZ3K8Q6X5W2V9T4R7N1M0PA-evidence.zip", "file": "SAMPLE FILE"},
    platforms=NOT_ZAPIER,
    file_response=True,
)
