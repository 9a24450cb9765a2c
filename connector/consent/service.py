"""Invitations and their answers: the register entry, the certificate, the events, the held letters.

Every function works in the caller's transaction, so an answer, its register entry, its event and
the release (or failure) of the letters waiting for it commit together or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector import shapes
from connector.consent import certificate, mailer, tokens
from connector.consent.models import ConsentInvitation, LetterLegalBasis
from connector.consent.texts import ShownText
from connector.delivery import outbox
from connector.delivery.events import record_account_event
from connector.evidence import journal
from connector.letters.vocabulary import ProofKind
from connector.models import Account, Consent, Letter, Proof
from connector.providers.base import LetterStatus
from connector.services import Services

CONSENT_PROOF_KIND = ProofKind.CONSENT.value
FAILURE_BY_STATUS = {
    "refused": ("consent_refused", "The recipient refused to receive registered e-mail (CPCE art. L.100)."),
    "expired": ("consent_expired", "The recipient did not answer the consent invitation before it expired; "
                                   "silence counts as a refusal."),
}


iso = shapes.iso  # one timestamp format for every answer


def invitation_url(services: Services, invitation: ConsentInvitation) -> str:
    """The link the person opens (signed, so it can be rebuilt at any time and never stored)."""
    token = tokens.sign(services.settings.fernet_keys(), invitation.id)
    return f"{services.settings.public_url}/consent/{token}"


def invitation_to_dict(services: Services, invitation: ConsentInvitation, *, with_url: bool = True) -> dict[str, Any]:
    """The invitation as the API and the ``consent.*`` events show it."""
    answered = invitation.answered_at is not None
    # Through the published model: the answer and its OpenAPI schema cannot drift apart.
    return shapes.ConsentInvitation.dump(**{
        "id": invitation.id,
        "object": "consent_invitation",
        "status": invitation.status,
        "email": invitation.email,
        "name": invitation.name,
        "first_name": invitation.first_name,
        "last_name": invitation.last_name,
        "message": invitation.message,
        "language": invitation.language,
        "url": invitation_url(services, invitation) if with_url and invitation.status == "pending" else None,
        "emailed": invitation.email_sent_at is not None,
        "created_at": iso(invitation.created_at),
        "expires_at": iso(invitation.expires_at),
        "answered_at": iso(invitation.answered_at),
        "consent_id": invitation.consent_id,
        "proof": {
            "answered_at": iso(invitation.answered_at),
            "ip_address": invitation.answer_ip,
            "user_agent": invitation.answer_user_agent,
            "text_version": invitation.text_version,
            "text_language": invitation.text_language,
            "text_sha256": invitation.text_sha256,
            "text": invitation.text_shown,
            "certificate": (
                {"sha256": invitation.certificate_sha256, "size": invitation.certificate_size,
                 "url": f"{services.settings.public_url}/v1/consents/invitations/{invitation.id}/certificate"}
                if invitation.certificate_sha256 else None
            ),
        } if answered else None,
        "withdrawn_at": iso(invitation.withdrawn_at),
        "expired_at": iso(invitation.expired_at),
    })


def create_invitation(services: Services, session: Session, account_id: str, *, email: str, name: str,
                      first_name: str | None, last_name: str | None, message: str | None, language: str,
                      expires_in_days: int, created_by: str) -> ConsentInvitation:
    """Store an invitation, its ``consent.invited`` event, its expiry job and (with SMTP) its e-mail job."""
    now = services.clock()
    invitation = ConsentInvitation(
        account_id=account_id, email=email.lower(), name=name, first_name=first_name, last_name=last_name,
        message=message, language=language, status="pending", created_by=created_by, created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    session.add(invitation)
    session.flush()
    outbox.enqueue(session, "expire_consent_invitation", account_id=account_id,
                   payload={"invitation_id": invitation.id}, run_at=invitation.expires_at,
                   dedupe_key=f"consent-expiry:{invitation.id}", new=True, max_attempts=20)
    if mailer.enabled(services.settings):
        outbox.enqueue(session, "send_consent_invitation", account_id=account_id,
                       payload={"invitation_id": invitation.id}, dedupe_key=f"consent-mail:{invitation.id}",
                       new=True, max_attempts=8)
    record_account_event(session, account_id, "consent.invited", invitation_to_dict(services, invitation), now)
    return invitation


def find_by_token(services: Services, session: Session, token: str, *, lock: bool = False) -> ConsentInvitation | None:
    """The invitation a link points at, or None when the link was tampered with or is unknown."""
    invitation_id = tokens.verify(services.settings.fernet_keys(), token)
    if invitation_id is None:
        return None
    return session.get(ConsentInvitation, invitation_id, with_for_update=lock)


def is_past_expiry(invitation: ConsentInvitation, now: datetime) -> bool:
    return invitation.status == "pending" and now >= invitation.expires_at


@dataclass(frozen=True)
class Visitor:
    """Who answered, as the web server saw them."""

    ip: str
    user_agent: str


class AlreadyAnswered(Exception):  # noqa: N818 - a state, not a failure
    """Another request changed the invitation first (a double click, two tabs)."""


def _move(session: Session, invitation: ConsentInvitation, from_status: str, to_status: str) -> None:
    """Change the status only if it is still ``from_status``, checked by the database itself: of two
    answers racing (SQLite takes no row lock), exactly one moves the row; the other gets AlreadyAnswered."""
    moved = session.execute(
        update(ConsentInvitation).where(ConsentInvitation.id == invitation.id, ConsentInvitation.status == from_status)
        .values(status=to_status).execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.rollback()
        raise AlreadyAnswered(invitation.id)
    invitation.status = to_status


def answer(services: Services, session: Session, invitation: ConsentInvitation, *, accepted: bool,
           shown: ShownText, visitor: Visitor) -> Consent | None:
    """Record the answer to a pending invitation with its proof; returns the register entry if accepted.

    The caller has checked that the invitation is pending and not past its expiry. Raises
    AlreadyAnswered (after rolling back) when another request answered it in the meantime.
    """
    now = services.clock()
    account = session.get(Account, invitation.account_id)
    _move(session, invitation, "pending", "accepted" if accepted else "refused")
    invitation.answered_at = now
    invitation.answer_ip = visitor.ip[:64]
    invitation.answer_user_agent = visitor.user_agent[:1000]
    invitation.text_version, invitation.text_language = shown.version, shown.language
    invitation.text_sha256, invitation.text_shown = shown.sha256, shown.text
    consent = None
    if accepted:
        consent = Consent(
            account_id=invitation.account_id, email=invitation.email,
            first_name=invitation.first_name, last_name=invitation.last_name or invitation.name,
            method="electronic_form", obtained_at=now,
            recorded_by="LRE Bridge consent page",
            note=f"Consent given on the bridge's consent page, invitation {invitation.id}.",
        )
        session.add(consent)
        session.flush()
        invitation.consent_id = consent.id
    pdf = certificate.render_certificate(invitation, account_name=account.name if account else invitation.account_id)
    invitation.certificate_sha256 = hashlib.sha256(pdf).hexdigest()
    invitation.certificate_size = len(pdf)
    invitation.certificate_storage_key = services.blobs.put(pdf)
    if consent is not None:
        consent.proof_filename = certificate.filename(invitation)
        consent.proof_sha256 = invitation.certificate_sha256
        consent.proof_storage_key = invitation.certificate_storage_key
    event_type = "consent.accepted" if accepted else "consent.refused"
    record_account_event(session, invitation.account_id, event_type, invitation_to_dict(services, invitation), now)
    if accepted:
        release_held_letters(services, session, invitation)
    else:
        fail_held_letters(services, session, invitation)
    return consent


def expire(services: Services, session: Session, invitation: ConsentInvitation) -> bool:
    """Mark a pending invitation past its expiry as expired (silence is a refusal); True if it changed."""
    now = services.clock()
    if not is_past_expiry(invitation, now):
        return False
    invitation.status = "expired"
    invitation.expired_at = now
    record_account_event(session, invitation.account_id, "consent.expired",
                         invitation_to_dict(services, invitation), now)
    fail_held_letters(services, session, invitation)
    return True


def withdraw(services: Services, session: Session, invitation: ConsentInvitation, visitor: Visitor) -> None:
    """The person withdraws an accepted consent: the register entry is revoked; later sends are refused."""
    now = services.clock()
    _move(session, invitation, "accepted", "withdrawn")
    invitation.withdrawn_at = now
    invitation.withdrawal_ip = visitor.ip[:64]
    invitation.withdrawal_user_agent = visitor.user_agent[:1000]
    consent = session.get(Consent, invitation.consent_id) if invitation.consent_id else None
    if consent is not None and consent.revoked_at is None:
        consent.revoked_at = now
        consent.revoked_by = f"the recipient, on the consent page (IP {invitation.withdrawal_ip})"[:200]
    record_account_event(session, invitation.account_id, "consent.withdrawn",
                         invitation_to_dict(services, invitation), now)
    # Letters still waiting for this consent, or sent on it but not yet handed to the provider,
    # cannot go any more (the safe side: the withdrawal reached us before the letter left).
    withdrawn = ("consent_withdrawn", "The recipient withdrew their consent before the letter was sent.")
    fail_held_letters(services, session, invitation, withdrawn)
    if consent is not None:
        fail_unsent_letters(services, session, consent, withdrawn)


def _held(session: Session, invitation: ConsentInvitation) -> list[LetterLegalBasis]:
    return list(session.scalars(select(LetterLegalBasis).where(
        LetterLegalBasis.invitation_id == invitation.id, LetterLegalBasis.hold_status == "held")))


def add_consent_proof(session: Session, letter: Letter, consent: Consent) -> None:
    """Bind the consent certificate to ``letter``: a proof of kind ``consent`` in its evidence."""
    if not consent.proof_storage_key or not consent.proof_sha256:
        return
    size = None
    if consent.proof_sha256:
        invitation = session.scalar(select(ConsentInvitation).where(ConsentInvitation.consent_id == consent.id))
        size = invitation.certificate_size if invitation is not None else None
    session.add(Proof(letter_id=letter.id, kind=CONSENT_PROOF_KIND, filename=consent.proof_filename or "consent.pdf",
                      size=size or 0, sha256=consent.proof_sha256, storage_key=consent.proof_storage_key))
    session.flush()
    journal.record_proofs(session, letter)


def release_held_letters(services: Services, session: Session, invitation: ConsentInvitation) -> None:
    consent = session.get(Consent, invitation.consent_id) if invitation.consent_id else None
    assert consent is not None
    for row in _held(session, invitation):
        letter = session.get(Letter, row.letter_id, with_for_update=True)
        row.resolved_at = services.clock()
        if letter is None or letter.status != LetterStatus.QUEUED:
            row.hold_status = "failed"
            continue
        row.hold_status = "released"
        row.consent_id = consent.id
        add_consent_proof(session, letter, consent)
        outbox.enqueue(session, "submit_letter", account_id=letter.account_id, letter_id=letter.id,
                       dedupe_key=f"submit:{letter.id}", max_attempts=services.settings.job_max_attempts)


def fail_unsent_letters(services: Services, session: Session, consent: Consent, failure: tuple[str, str]) -> None:
    """Fail the queued letters sent on ``consent`` that no worker has begun to submit."""
    from connector.letters.service import record_event

    rows = session.scalars(select(LetterLegalBasis).where(LetterLegalBasis.consent_id == consent.id))
    for row in list(rows):
        letter = session.get(Letter, row.letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED or letter.submit_attempted_at is not None:
            continue  # already at (or possibly at) the provider: it went out before the withdrawal
        record_event(session, letter, LetterStatus.FAILED, occurred_at=services.clock(), provider=letter.provider,
                     provider_event_id=None, raw={"code": failure[0], "message": failure[1], "consent_id": consent.id},
                     failure=failure, public_url=services.settings.public_url)


def fail_held_letters(services: Services, session: Session, invitation: ConsentInvitation,
                      failure: tuple[str, str] | None = None) -> None:
    from connector.letters.service import record_event  # letters imports this package's gate

    failure = failure or FAILURE_BY_STATUS[invitation.status]
    for row in _held(session, invitation):
        row.hold_status = "failed"
        row.resolved_at = services.clock()
        letter = session.get(Letter, row.letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED:
            continue
        record_event(session, letter, LetterStatus.FAILED, occurred_at=services.clock(), provider=letter.provider,
                     provider_event_id=None, raw={"code": failure[0], "message": failure[1],
                                                  "invitation_id": invitation.id},
                     failure=failure, public_url=services.settings.public_url)
