"""The sandbox provider: plays a qualified provider's side of the whole lifecycle, no account needed.

It keeps its own records (``sandbox_mails``) the way a real provider keeps its database, so the
bridge talks to it exactly as to AR24: submit, look up by reference, re-read the state, download
proofs. The outcome is chosen per letter (``sandbox_outcome``); each lifecycle step happens
``LRE_SANDBOX_STEP_SECONDS`` after the previous one, so the 15-day negligence window passes in
seconds. Proofs are real PDFs, generated deterministically (same letter, same bytes).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import select

from connector.db import Database
from connector.letters.vocabulary import PROOF_KIND_BY_STATUS, PROOF_LABELS, SandboxOutcome
from connector.lib.spool import HashingFile
from connector.models import SandboxMail, new_id
from connector.providers.base import (
    LetterStatus,
    OutgoingLetter,
    ProofRef,
    ProviderContext,
    ProviderError,
    ProviderEvent,
    ProviderState,
    SubmitResult,
    WebhookRejected,
    proof_file_of,
)

# The outcomes the provider reports as a status; ``failed`` is a refused submission instead.
OUTCOMES: dict[str, LetterStatus] = {
    outcome.value: LetterStatus(outcome.value) for outcome in SandboxOutcome if outcome != SandboxOutcome.FAILED
}

PROOF_TITLES: dict[str, str] = {kind.value: f"{label.fr} / {label.en}" for kind, label in PROOF_LABELS.items()}


class SandboxProvider:
    """A stand-in for a qualified provider, for demos and tests. Issues no legal proof."""

    name: ClassVar[str] = "sandbox"
    display_name: ClassVar[str] = "Sandbox (no legal value)"
    supports_webhooks: ClassVar[bool] = False
    SETTINGS: ClassVar[tuple[str, ...]] = ()
    SECRET_SETTINGS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        services = context.extras["services"]
        self.db: Database = context.extras["db"]
        self.step = timedelta(seconds=services.settings.sandbox_step_seconds)
        self.submit_delay = services.settings.sandbox_submit_delay_seconds

    def prepare_submission(self, sender_otp: str | None) -> dict[str, Any]:
        return {}

    def check_letter(self, letter: OutgoingLetter) -> None:
        return None  # the sandbox takes any letter the API accepted

    def submit(self, letter: OutgoingLetter) -> SubmitResult:
        outcome = letter.sandbox_outcome or "accepted"
        if outcome == "failed":
            raise ProviderError(
                "sandbox_rejected",
                "The sandbox refused this letter, as asked with sandbox_outcome=failed.",
                permanent=True,
                field="sandbox_outcome",
            )
        mail = SandboxMail(
            id=new_id("sbx"),
            reference=letter.id,
            outcome=outcome,
            recipient_email=letter.recipient.email,
            documents_sha256=[d.sha256 for d in letter.documents],
            callback_url=letter.callback_url,
            submitted_at=self.context.now(),
        )
        # The provider's own commit: from here on the letter exists at the provider,
        # whatever happens to the bridge's worker.
        with self.db.transaction() as session:
            session.add(mail)
        if self.submit_delay:
            time.sleep(self.submit_delay)
        return SubmitResult(provider_letter_id=mail.id, events=self._events(mail, self.context.now()))

    def find_by_reference(self, letter_id: str) -> str | None:
        with self.db.read() as session:
            found = session.scalar(select(SandboxMail.id).where(SandboxMail.reference == letter_id))
        return found

    def fetch_state(self, provider_letter_id: str) -> ProviderState:
        with self.db.read() as session:
            mail = session.get(SandboxMail, provider_letter_id)
        if mail is None:
            raise ProviderError("letter_not_found", "The sandbox has no such letter.", permanent=True)
        events = self._events(mail, self.context.now())
        return ProviderState(provider_letter_id=mail.id, events=events, final=len(events) == 2)

    def download_proof(self, proof: ProofRef) -> HashingFile:
        if proof.content is None:
            raise ProviderError("proof_not_found", "The sandbox has no such proof.", permanent=True)
        return proof_file_of(self.context, proof.content)

    def parse_callback(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str | None:
        raise WebhookRejected("the sandbox sends no callbacks; the bridge polls it", status=404)

    def _events(self, mail: SandboxMail, now: datetime) -> tuple[ProviderEvent, ...]:
        deposited = ProviderEvent(
            status=LetterStatus.DEPOSITED,
            occurred_at=mail.submitted_at,
            provider_event_id=f"{mail.id}:deposited",
            raw={"id": mail.id, "state": "deposited", "ts_ev_date": mail.submitted_at.isoformat()},
            proof=ProofRef(kind="deposit", content=_proof_pdf(mail, "deposit", mail.submitted_at),
                           filename=f"preuve-depot-{mail.reference}.pdf"),
            reported_document_sha256=tuple(mail.documents_sha256),
        )
        final_at = mail.submitted_at + self.step
        if now < final_at:
            return (deposited,)
        status = OUTCOMES[mail.outcome]
        kind = PROOF_KIND_BY_STATUS[status].value
        final = ProviderEvent(
            status=status,
            occurred_at=final_at,
            provider_event_id=f"{mail.id}:{status}",
            raw={"id": mail.id, "state": str(status), "date": final_at.isoformat()},
            proof=ProofRef(kind=kind, content=_proof_pdf(mail, kind, final_at),
                           filename=f"preuve-{kind}-{mail.reference}.pdf"),
        )
        return (deposited, final)


def _proof_pdf(mail: SandboxMail, kind: str, at: datetime) -> bytes:
    """A one-page proof, byte-identical for the same inputs (reportlab's invariant mode)."""
    buffer = io.BytesIO()
    from reportlab.lib.pagesizes import A4  # loaded with the first sandbox proof, not with the API
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(PROOF_TITLES[kind])
    pdf.setAuthor("LRE Bridge sandbox")
    pdf.setCreator("LRE Bridge sandbox")
    width, height = A4
    y = height - 72
    lines = [
        ("Helvetica-Bold", 16, PROOF_TITLES[kind]),
        ("Helvetica", 10, "SANDBOX — document de démonstration, sans valeur juridique."),
        ("Helvetica", 10, "SANDBOX — demonstration document, no legal value."),
        ("Helvetica", 11, ""),
        ("Helvetica", 11, f"Identifiant prestataire : {mail.id}"),
        ("Helvetica", 11, f"Référence de la lettre : {mail.reference}"),
        ("Helvetica", 11, f"Destinataire : {mail.recipient_email}"),
        ("Helvetica", 11, f"Date (UTC) : {at.strftime('%Y-%m-%d %H:%M:%S')}"),
    ]
    lines += [("Courier", 8, f"SHA-256 document {i + 1}: {h}") for i, h in enumerate(mail.documents_sha256)]
    for font, size, text in lines:
        pdf.setFont(font, size)
        pdf.drawString(72, y, text)
        y -= size + 8
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
