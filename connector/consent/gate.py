"""The legal basis of a send: which rule lets this letter reach this recipient, checked before writing.

Three bases (docs/consent.md has the texts):

- ``professional``: a professional recipient; no consent needed (CPCE art. L.100 asks it only of
  non-professionals);
- ``consent``: the recipient's prior consent is in the register (CPCE art. L.100), or the letter is
  held until a pending invitation is answered (``hold_until_consent``);
- ``condominium``: a syndic's notification to a co-owner (loi n° 65-557 art. 42-1 as amended by
  loi n° 2024-322): electronic by default, unless the co-owner asked for paper. The account must
  opt in, and a co-owner in the paper register is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.consent.models import AccountLegalBases, ConsentInvitation, LetterLegalBasis, PaperRequest
from connector.errors import LetterRejected
from connector.models import Consent, Letter


class LegalBasis(StrEnum):
    """``recipient.legal_basis`` of a letter."""

    PROFESSIONAL = "professional"
    CONSENT = "consent"
    CONDOMINIUM = "condominium"


@dataclass(frozen=True)
class Decision:
    """The basis a letter goes out on; ``invitation_id`` set means the letter waits for that answer."""

    basis: str
    consent: Consent | None = None
    invitation_id: str | None = None

    @property
    def held(self) -> bool:
        return self.invitation_id is not None


def active_consent(session: Session, account_id: str, email: str) -> Consent | None:
    """The newest unrevoked register entry for this address, if any."""
    return session.scalar(
        select(Consent).where(Consent.account_id == account_id, Consent.email == email.lower(),
                              Consent.revoked_at.is_(None)).order_by(Consent.created_at.desc()).limit(1)
    )


def paper_request(session: Session, account_id: str, email: str) -> PaperRequest | None:
    return session.scalar(select(PaperRequest).where(
        PaperRequest.account_id == account_id, PaperRequest.email == email.lower(),
        PaperRequest.withdrawn_at.is_(None)).limit(1))


def condominium_enabled(session: Session, account_id: str) -> bool:
    row = session.get(AccountLegalBases, account_id)
    return bool(row and row.condominium)


def pending_invitation(session: Session, account_id: str, email: str, now: datetime) -> ConsentInvitation | None:
    return session.scalar(select(ConsentInvitation).where(
        ConsentInvitation.account_id == account_id, ConsentInvitation.email == email.lower(),
        ConsentInvitation.status == "pending", ConsentInvitation.expires_at > now,
    ).order_by(ConsentInvitation.created_at.desc()).limit(1))


def decide(session: Session, account_id: str, email: str, *, needs_consent: bool, basis: str | None,
           hold_until_consent: bool, now: datetime) -> Decision:
    """The basis a letter to ``email`` may go out on; raises LetterRejected (naming the field) when none
    applies. ``needs_consent``: the recipient is not a professional (CPCE art. L.100)."""
    chosen = basis or ("consent" if needs_consent else "professional")
    if chosen == "professional":
        if needs_consent:
            raise LetterRejected("invalid_legal_basis", "legal_basis professional is only for a professional "
                           "recipient (recipient.type professional).", "recipient.legal_basis")
        return Decision("professional")
    if chosen == "condominium":
        if not condominium_enabled(session, account_id):
            raise LetterRejected("legal_basis_not_enabled", "The condominium basis is not enabled for this account: "
                           "a syndic enables it with PUT /v1/consents/legal-bases.", "recipient.legal_basis")
        request = paper_request(session, account_id, email)
        if request is not None:
            raise LetterRejected("paper_requested", f"{email} asked to receive notifications by post "
                           f"(paper register entry {request.id}, loi n° 65-557 art. 42-1): send a paper "
                           "registered letter instead.", "recipient.email")
        return Decision("condominium")
    consent = active_consent(session, account_id, email)
    if consent is not None:
        return Decision("consent", consent=consent)
    if hold_until_consent:
        invitation = pending_invitation(session, account_id, email, now)
        if invitation is not None:
            return Decision("consent", invitation_id=invitation.id)
        raise LetterRejected("consent_required", f"{email} has no consent in the register and no pending "
                       "invitation to wait for: invite them first with POST /v1/consents/invitations.",
                       "hold_until_consent")
    raise LetterRejected(
        "consent_required",
        f"{email} is not a professional: French law (CPCE art. L.100) requires their prior consent to "
        "receive registered e-mail. Record it with POST /v1/consents, or invite them with "
        "POST /v1/consents/invitations (and send with hold_until_consent to wait for the answer).",
        "recipient.email",
    )


def record_decision(session: Session, letter: Letter, decision: Decision, now: datetime) -> None:
    """Keep the basis with the letter (after the letter's first flush) and bind the consent certificate."""
    from connector.consent.service import add_consent_proof

    session.add(LetterLegalBasis(
        letter_id=letter.id, account_id=letter.account_id, basis=decision.basis,
        consent_id=decision.consent.id if decision.consent is not None else None,
        invitation_id=decision.invitation_id, hold_status="held" if decision.held else None, checked_at=now,
    ))
    if decision.consent is not None:
        add_consent_proof(session, letter, decision.consent)
