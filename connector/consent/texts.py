"""The words the consent page shows, versioned: the exact text a person agreed to is evidence.

A text is never edited in place: a change is a new version (a new key in :data:`TEXTS`), so a
certificate's version and SHA-256 always point at one wording. The text shown is the template
below filled with the sender's and the recipient's names; its SHA-256 is over those UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CURRENT_VERSION = "2026-12-01"
LANGUAGES = ("fr", "en")

TEXTS: dict[str, dict[str, str]] = {
    "2026-12-01": {
        "fr": (
            "{sender} vous demande, {recipient} ({email}), votre accord pour vous adresser des lettres "
            "recommandées électroniques.\n"
            "Une lettre recommandée électronique (LRE) est l'équivalent légal d'une lettre recommandée avec "
            "accusé de réception (code des postes et des communications électroniques, art. L.100 ; règlement "
            "eIDAS, art. 44). Vous recevrez un e-mail d'un prestataire qualifié vous invitant à prendre "
            "connaissance de la lettre ; la date de présentation, votre acceptation ou votre refus, ou "
            "l'absence de réclamation dans les 15 jours, produisent les mêmes effets qu'avec une lettre "
            "recommandée papier.\n"
            "En acceptant, vous consentez à recevoir de {sender} des lettres recommandées électroniques à "
            "l'adresse {email}, au lieu de lettres recommandées papier. Vous pouvez retirer ce consentement "
            "à tout moment depuis cette page ; le retrait vaut pour les envois suivants. Si vous refusez, "
            "{sender} ne pourra pas vous adresser de lettre recommandée électronique."
        ),
        "en": (
            "{sender} asks you, {recipient} ({email}), for your agreement to send you electronic registered "
            "letters.\n"
            "An electronic registered letter (LRE) is the legal equivalent of a registered letter with "
            "acknowledgement of receipt (French postal and electronic communications code, art. L.100; eIDAS "
            "regulation, art. 44). You will receive an e-mail from a qualified provider inviting you to read "
            "the letter; the date it is presented, your acceptance or refusal, or not claiming it within "
            "15 days, have the same effects as with a paper registered letter.\n"
            "By accepting, you consent to receive electronic registered letters from {sender} at {email} "
            "instead of paper registered letters. You can withdraw this consent at any time from this page; "
            "the withdrawal applies to later letters. If you refuse, {sender} cannot send you electronic "
            "registered letters."
        ),
    },
}


@dataclass(frozen=True)
class ShownText:
    """One text exactly as shown: its version, language, wording and SHA-256."""

    version: str
    language: str
    text: str
    sha256: str

    @property
    def paragraphs(self) -> list[str]:
        return self.text.split("\n")


def consent_text(language: str, *, sender: str, recipient: str, email: str,
                 version: str = CURRENT_VERSION) -> ShownText:
    """The consent text in ``language`` for this sender and recipient (KeyError: unknown version)."""
    language = language if language in LANGUAGES else "fr"
    text = TEXTS[version][language].format(sender=sender, recipient=recipient, email=email)
    return ShownText(version, language, text, hashlib.sha256(text.encode("utf-8")).hexdigest())
