"""The invitation e-mail, sent over SMTP when ``LRE_ALERT_SMTP_HOST`` is set (otherwise a Zap sends the link).

The bridge has one SMTP server configuration, ``LRE_ALERT_SMTP_*`` (named for the alerts that came
first); invitations use it too, from ``LRE_CONSENT_EMAIL_FROM`` (else ``LRE_ALERT_EMAIL_FROM``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from connector.config import Settings


def invitation_message(settings: Settings, *, to: str, name: str, sender: str, url: str, message: str | None,
                       expires: str, invitation_id: str) -> EmailMessage:
    """The e-mail (French, then English) carrying the consent link."""
    mail = EmailMessage()
    mail["Subject"] = f"{sender} : votre accord pour recevoir des lettres recommandées électroniques"
    sender_address = from_address(settings)
    mail["From"] = formataddr((sender, sender_address))
    mail["To"] = formataddr((name, to))
    mail["Message-ID"] = make_msgid(idstring=invitation_id, domain=sender_address.split("@")[-1])
    quoted = f"\n« {message} »\n" if message else ""
    mail.set_content(
        f"Bonjour {name},\n\n{sender} vous demande votre accord pour vous adresser des lettres recommandées "
        f"électroniques.\n{quoted}\nPour accepter ou refuser (avant le {expires}) :\n{url}\n\n"
        "Ce lien est personnel et ne sert qu'une fois. Vous pourrez retirer votre accord à tout moment depuis "
        "la même page.\n\n---\n\n"
        f"Hello {name},\n\n{sender} asks for your agreement to send you electronic registered letters.\n"
        f"To agree or refuse (before {expires}): {url}?lang=en\n\n"
        "This link is personal and works once. You can withdraw your agreement at any time from the same page.\n"
    )
    return mail


def from_address(settings: Settings) -> str:
    return settings.consent_email_from or settings.alert_email_from


def enabled(settings: Settings) -> bool:
    """True when invitations are e-mailed by the bridge."""
    return bool(settings.alert_smtp_host)


def send(settings: Settings, mail: EmailMessage) -> None:
    """Deliver ``mail`` to the configured SMTP server (STARTTLS when set); raises on failure."""
    assert settings.alert_smtp_host
    with smtplib.SMTP(settings.alert_smtp_host, settings.alert_smtp_port,
                      timeout=settings.alert_smtp_timeout_seconds) as client:
        if settings.alert_smtp_starttls:
            client.starttls(context=ssl.create_default_context())
        if settings.alert_smtp_username:
            client.login(settings.alert_smtp_username, settings.alert_smtp_password or "")
        client.send_message(mail)
