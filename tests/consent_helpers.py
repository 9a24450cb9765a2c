"""Builders shared by the consent tests (API and browser)."""

from __future__ import annotations

import base64
import re
from typing import Any

from flask.testing import FlaskClient

from tests.helpers import letter_payload, make_pdf

INDIVIDUAL = {"type": "individual", "email": "jeanne.martin@exemple.fr", "first_name": "Jeanne",
              "last_name": "Martin"}


def invite(client: FlaskClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """Create an invitation through the API; returns its JSON."""
    body = {"email": INDIVIDUAL["email"], "name": "Jeanne Martin", "first_name": "Jeanne", "last_name": "Martin",
            "message": "Pour vos prochains avis d'échéance.", "expires_in_days": 7, **overrides}
    response = client.post("/v1/consents/invitations", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def letter_to(recipient: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A ``POST /v1/letters`` body with one PDF to ``recipient``."""
    return letter_payload(recipient=recipient, documents=[
        {"filename": "avis.pdf", "content_base64": base64.b64encode(make_pdf("Avis")).decode()}], **overrides)


def path_of(url: str) -> str:
    """The path of a consent link (the test client and live servers use their own host)."""
    match = re.match(r"^https?://[^/]+(/consent/.+)$", url)
    assert match, url
    return match.group(1)


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the consent form."""
    return dict(re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', html))
