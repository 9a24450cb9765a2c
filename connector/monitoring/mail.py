"""Alert e-mail through the operator's SMTP server (``LRE_ALERT_SMTP_*`` settings)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from connector.config import Settings
from connector.consent.mailer import send as smtp_send


class MailError(Exception):
    """The SMTP server could not be reached or refused the message (worth retrying)."""


def alert_message(settings: Settings, alert: dict[str, Any], transition: str) -> EmailMessage:
    """The e-mail for one alert transition, French first, then English."""
    raised = transition == "alert.raised"
    message = EmailMessage()
    state_fr, state_en = ("Alerte", "Alert") if raised else ("Alerte résolue", "Alert resolved")
    message["Subject"] = f"[LRE Bridge] {state_fr} / {state_en}: {alert['label_fr']} / {alert['label_en']}"
    message["From"] = settings.alert_email_from
    message["To"] = ", ".join(_recipients(settings))
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="lre-bridge")
    when = alert["raised_at"] if raised else alert["resolved_at"]
    message.set_content(
        f"{state_fr} ({alert['severity']}) : {alert['label_fr']}\n"
        f"{alert['message']}\n\n"
        f"Compte / account : {alert['subject'] or ''}\n"
        f"Depuis / since : {when}\n"
        f"Identifiant / id : {alert['id']}\n\n"
        f"{state_en}: {alert['label_en']}\n"
        f"{settings.public_url}/dashboard\n"
    )
    return message


def _recipients(settings: Settings) -> list[str]:
    return [address.strip() for address in (settings.alert_email_to or "").split(",") if address.strip()]


def send_alert_mail(settings: Settings, alert: dict[str, Any], transition: str) -> None:
    """Send one alert e-mail; raises MailError (without the password) when it cannot be sent."""
    if not settings.alert_smtp_host or not _recipients(settings):
        return
    message = alert_message(settings, alert, transition)
    try:
        # One SMTP client for the bridge's mail (consent invitations use the same settings).
        smtp_send(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"alert e-mail not sent via {settings.alert_smtp_host}:{settings.alert_smtp_port}: "
                        f"{type(exc).__name__}") from exc
