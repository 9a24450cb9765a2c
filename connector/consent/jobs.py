"""Outbox jobs of the consent package: expire an unanswered invitation, e-mail an invitation."""

from __future__ import annotations

import smtplib

from connector.consent import mailer, service
from connector.consent.models import ConsentInvitation
from connector.delivery import outbox
from connector.models import Account, Job
from connector.services import Services


@outbox.job_handler("expire_consent_invitation")
def expire_consent_invitation(services: Services, job: Job) -> None:
    """At the invitation's expiry: silence is a refusal; the letters waiting for it fail."""
    with services.db.transaction() as session:
        invitation = session.get(ConsentInvitation, job.payload["invitation_id"], with_for_update=True)
        if invitation is None or invitation.status != "pending":
            return
        remaining = (invitation.expires_at - services.clock()).total_seconds()
        if remaining > 0:
            raise outbox.Reschedule(remaining)  # a clock behind the database's: come back then
        service.expire(services, session, invitation)


@outbox.job_handler("send_consent_invitation")
def send_consent_invitation(services: Services, job: Job) -> None:
    """E-mail the link (built again from its signature: the job payload holds no secret)."""
    with services.db.transaction() as session:
        invitation = session.get(ConsentInvitation, job.payload["invitation_id"])
        if invitation is None or invitation.status != "pending" or invitation.email_sent_at is not None:
            return
        account = session.get(Account, invitation.account_id)
        mail = mailer.invitation_message(
            services.settings, to=invitation.email, name=invitation.name,
            sender=account.name if account else "", url=service.invitation_url(services, invitation),
            message=invitation.message, expires=invitation.expires_at.strftime("%d/%m/%Y"),
            invitation_id=invitation.id,
        )
    try:
        mailer.send(services.settings, mail)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        _note_error(services, invitation.id, f"{type(exc).__name__}: {exc}")
        raise outbox.PermanentError(f"the mail server refused the message: {exc}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        _note_error(services, invitation.id, f"{type(exc).__name__}: {exc}")
        raise outbox.RetryableError(f"SMTP: {type(exc).__name__}: {exc}") from exc
    with services.db.transaction() as session:
        row = session.get(ConsentInvitation, invitation.id)
        if row is not None:
            row.email_sent_at = services.clock()
            row.email_error = None


def _note_error(services: Services, invitation_id: str, error: str) -> None:
    with services.db.transaction() as session:
        row = session.get(ConsentInvitation, invitation_id)
        if row is not None:
            row.email_error = error[:1000]
