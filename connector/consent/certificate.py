"""The consent certificate: a PDF of the answer and its proof, stored in the register.

Rendered with the letters' PDF engine (same embedded font, reproducible bytes for the same answer).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from connector.consent.models import ConsentInvitation

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "consent"


@cache
def environment() -> Environment:
    """The Jinja environment of the consent page and certificate (autoescaped HTML)."""
    return Environment(loader=FileSystemLoader(str(ASSETS)), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def filename(invitation: ConsentInvitation) -> str:
    return f"certificat-consentement-{invitation.id}.pdf"


def render_certificate(invitation: ConsentInvitation, *, account_name: str) -> bytes:
    """The certificate of ``invitation``'s answer (accepted or refused), as PDF bytes."""
    assert invitation.answered_at is not None
    html = environment().get_template("certificate.html").render(
        inv=invitation, account_name=account_name,
        answered_at=invitation.answered_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        created_at=invitation.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        expires_at=invitation.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        paragraphs=(invitation.text_shown or "").split("\n"),
    )
    from connector.rendering.pdf import html_to_pdf  # xhtml2pdf is loaded only when a certificate is made

    return html_to_pdf(html, title=f"Certificat de consentement {invitation.id}", author="LRE Bridge",
                       created_at=invitation.answered_at)
