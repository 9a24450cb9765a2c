"""Templates: the preview (render without sending) and the hidden list that feeds the template dropdowns."""

from __future__ import annotations

from connector.platforms.catalog.fields import TEMPLATE, TEMPLATE_FIELDS
from connector.platforms.catalog.letters import LETTER_SAMPLE
from connector.platforms.model import Endpoint, FieldType, Kind, Operation, OutputField, Text

RENDER = Operation(
    key="render_letter",
    kind=Kind.CREATE,
    noun=Text("Preview", "Aperçu"),
    label=Text("Render a Letter (Preview PDF)", "Produire une lettre (aperçu PDF)"),
    description=Text(
        "Fills a template and returns the PDF without sending anything: to check a letter or attach it elsewhere.",
        "Remplit un modèle et renvoie le PDF sans rien envoyer : pour relire une lettre ou la joindre ailleurs.",
    ),
    endpoint=Endpoint("POST", "/v1/templates/{template}/render"),
    inputs=(TEMPLATE, TEMPLATE_FIELDS),
    outputs=(
        OutputField("template", Text("Template", "Modèle")),
        OutputField("template_version", Text("Template version", "Version du modèle"), FieldType.INTEGER),
        OutputField("filename", Text("File name", "Nom du fichier")),
        OutputField("size", Text("Size (bytes)", "Taille (octets)"), FieldType.INTEGER),
        OutputField("sha256", Text("SHA-256", "SHA-256")),
        OutputField("letter_date", Text("Letter date", "Date de la lettre")),
        OutputField("file", Text("PDF", "PDF"), FieldType.FILE),
    ),
    sample={"template": "mise_en_demeure", "template_version": 1, "filename": "mise_en_demeure.pdf", "size": 48213,
            "sha256": LETTER_SAMPLE["documents"][0]["sha256"], "letter_date": "2026-11-27", "file": "SAMPLE FILE"},
    file_response=True,
)

TEMPLATE_LIST = Operation(
    key="template_list",
    kind=Kind.TRIGGER,
    noun=Text("Template", "Modèle"),
    label=Text("New Template", "Nouveau modèle"),
    description=Text("Lists your letter templates (feeds the template dropdown).",
                     "Liste vos modèles de lettres (alimente la liste déroulante des modèles)."),
    endpoint=Endpoint("GET", "/v1/templates"),
    inputs=(),
    outputs=(OutputField("id", Text("Template key", "Clé du modèle")),
             OutputField("name", Text("Template", "Modèle"))),
    sample={"id": "mise_en_demeure", "name": "Mise en demeure de payer"},
    hidden=True,
)

# Template field types (``GET /v1/templates/<name>``) -> input field types.
TEMPLATE_FIELD_TYPES = {
    "text": FieldType.STRING,
    "long_text": FieldType.TEXT,
    "date": FieldType.STRING,
    "amount": FieldType.STRING,
    "email": FieldType.EMAIL,
    "list": FieldType.STRING,  # with list=True from the template's field
}
