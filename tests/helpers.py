"""Small builders shared by the tests."""

from __future__ import annotations

import base64
import io
from typing import Any

from reportlab.pdfgen import canvas


def make_pdf(text: str = "Lettre de test") -> bytes:
    """A real one-page PDF."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, invariant=1)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def letter_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/letters`` body to a professional recipient, with one PDF."""
    payload: dict[str, Any] = {
        "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
        "documents": [{"filename": "facture.pdf", "content_base64": base64.b64encode(make_pdf()).decode()}],
        "message": "Veuillez trouver ci-joint notre mise en demeure.",
        "reference": "DOSSIER-42",
    }
    payload.update(overrides)
    return payload
