"""Letters: creation, the public shape, and status changes (see ``requests`` and ``documents``).

``record_event`` is the only place a letter's status changes. It writes the event, the proof,
the journal line and the outbound webhook deliveries in the caller's transaction, so that either
all of them exist or none does.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import shapes
from connector.archive.jobs import LOCK_RETENTION_JOB
from connector.consent import gate as consent_gate
from connector.delivery import outbox
from connector.delivery.hooks import active_hooks, enqueue_deliveries
from connector.errors import LetterRejected, from_provider
from connector.evidence import journal
from connector.evidence.retention import write_lock_until
from connector.letters.documents import (
    IncomingDocument,
    close_documents,
    load_documents,
    put_stream_in_background,
    safe_filename,
)
from connector.letters.requests import LetterIn
from connector.letters.vocabulary import CONSENT_REQUIRED
from connector.lib import spool
from connector.models import Account, Consent, Document, Event, Hook, Letter, Proof, new_id
from connector.providers.base import (
    FINAL_STATUSES,
    PROOF_KIND_BY_STATUS,
    LetterStatus,
    OutgoingDocument,
    OutgoingLetter,
    ProofRef,
    ProviderError,
    Recipient,
)
from connector.services import Services

log = logging.getLogger(__name__)


# Which statuses may follow which. Anything else (a late or duplicated provider report) is kept
# as raw data by the provider adapter but changes nothing here.
ALLOWED_TRANSITIONS: dict[LetterStatus, frozenset[LetterStatus]] = {
    LetterStatus.QUEUED: frozenset({LetterStatus.DEPOSITED, LetterStatus.FAILED}),
    LetterStatus.DEPOSITED: frozenset(
        {LetterStatus.ACCEPTED, LetterStatus.REFUSED, LetterStatus.NEGLECTED, LetterStatus.BOUNCED}
    ),
}


def has_consent(session: Session, account_id: str, email: str) -> bool:
    """True when the account holds an unrevoked consent for this e-mail address."""
    found = session.scalar(
        select(Consent.id).where(
            Consent.account_id == account_id, Consent.email == email.lower(), Consent.revoked_at.is_(None)
        )
    )
    return found is not None


@dataclass(frozen=True)
class AccountContext:
    """What ``create_letter`` reads about the account: its provider and its active subscriptions.
    Read once (``account_context``) for the several letters one transaction creates (a batch)."""

    account_id: str
    provider_name: str
    provider_settings: dict[str, Any]
    hooks: list[Hook]


def account_context(services: Services, session: Session, account_id: str) -> AccountContext:
    """The account's provider settings and active hooks, as of now, in the caller's transaction."""
    provider_name, provider_settings = services.provider_settings(session, account_id)
    return AccountContext(account_id, provider_name, provider_settings, active_hooks(session, account_id))


def create_letter(
    services: Services,
    session: Session,
    account_id: str,
    payload: LetterIn,
    documents: list[IncomingDocument],
    template: tuple[str, int] | None = None,
    *,
    account: AccountContext | None = None,
) -> tuple[Letter, dict[str, Any]]:
    """Store a letter, its documents and its submit job in the caller's transaction; returns the
    letter and its public shape (as its ``letter.queued`` event carries it).

    ``documents`` are the already-checked PDFs (uploads, downloads, or the rendered template).
    ``account``: the account's context when the caller read it already (``account_context``).
    Raises LetterRejected (``consent_required``, a provider's refusal) or Unavailable before writing:
    the session then holds nothing of this letter.
    """
    recipient = payload.recipient
    # The legal basis (consent register, paper register, or a pending invitation to wait for).
    basis = consent_gate.decide(session, account_id, recipient.email, needs_consent=recipient.type in CONSENT_REQUIRED,
                                basis=recipient.legal_basis, hold_until_consent=payload.hold_until_consent,
                                now=services.clock())
    if not documents:
        raise LetterRejected("invalid_request", "Give a template (with its data) or at least one PDF document.",
                       "documents")
    if len(documents) > services.settings.max_documents:
        raise LetterRejected("too_many_documents", f"At most {services.settings.max_documents} documents.",
                       "documents")

    if account is None or account.account_id != account_id:
        provider_name, provider_settings = services.provider_settings(session, account_id)
    else:
        provider_name, provider_settings = account.provider_name, account.provider_settings
    provider = services.provider(provider_name, provider_settings)
    letter_id = new_id("let")
    digests = [d.sha256 for d in documents]
    try:
        provider.check_letter(OutgoingLetter(
            id=letter_id,
            recipient=Recipient(type=recipient.type, email=recipient.email, first_name=recipient.first_name,
                                last_name=recipient.last_name, company=recipient.company),
            # A large document is read (from its file) only if the adapter asks for its bytes.
            documents=tuple(OutgoingDocument(d.filename, d.content if d.in_memory else d.reader, d.sha256,
                                             d.size)
                            for d in documents),
            message=payload.message,
            reference=payload.reference,
            sandbox_outcome=payload.sandbox_outcome,
        ))
        submit_context = provider.prepare_submission(payload.sender_otp)
    except ProviderError as exc:
        raise from_provider(exc) from None

    now = services.clock()
    letter = Letter(
        id=letter_id,
        account_id=account_id,
        status=LetterStatus.QUEUED,
        recipient_type=recipient.type,
        recipient_email=recipient.email.lower(),
        recipient_first_name=recipient.first_name,
        recipient_last_name=recipient.last_name,
        recipient_company=recipient.company,
        message=payload.message,
        reference=payload.reference,
        metadata_=payload.metadata,
        sandbox_outcome=payload.sandbox_outcome if provider_name == "sandbox" else None,
        provider=provider_name,
        callback_token=secrets.token_urlsafe(32),
        submit_context_encrypted=services.encryptor.encrypt_json(submit_context) if submit_context else None,
        created_at=now,
        updated_at=now,  # set here, not at insert: the first event reads it before the flush
        # Set, not left to the column: the KPI rollups then read the new letter from this object
        # rather than from the database (monitoring.rollups._state_in_session).
        deposited_at=None,
        completed_at=None,
        template_name=template[0] if template else None,
        template_version=template[1] if template else None,
    )
    # Nothing below refuses the letter. Its documents go to the archive on writer threads while the
    # rows are built (a durable write waits on the disk, not the CPU); the wait at the end comes
    # before the caller commits, so no committed row ever points at a blob not yet on disk. Should
    # the transaction fail instead, a blob may stay behind unreferenced, as after a crash.
    # Locked by the storage (S3 Object Lock) for at least the account's retention from now: a lower
    # bound of the end fixed when the letter ends, raised to that end then (``lock_retention``).
    lock = _write_lock(services, session, letter)
    writes = [services.blobs.put_in_background(doc.content, retain_until=lock) if doc.in_memory
              else put_stream_in_background(services.blobs, doc.reader(), retain_until=lock) for doc in documents]
    try:
        # Read before anything is added: the letter, its documents and its first event then go out
        # in one flush (the models' relationships put the letter first).
        hooks = account.hooks if account is not None and account.account_id == account_id \
            else active_hooks(session, account_id)
        session.add(letter)
        rows = [
            Document(
                id=new_id("doc"),  # set here: the letter's queued event shows it before the row is flushed
                letter_id=letter.id,
                position=position,
                filename=safe_filename(doc.filename),
                size=doc.size,
                sha256=digest,
                storage_key="sha256:" + digest,  # the key every store gives these bytes (storage.key_for)
                source_url=doc.source_url,
            )
            for position, (doc, digest) in enumerate(zip(documents, digests, strict=True))
        ]
        session.add_all(rows)
        queued = record_event(session, letter, LetterStatus.QUEUED, occurred_at=letter.created_at, provider=None,
                              provider_event_id=None, raw={}, public_url=services.settings.public_url,
                              new_letter_documents=rows, hooks=hooks)
        assert queued is not None  # a new letter always accepts its first event
        consent_gate.record_decision(session, letter, basis, now)
        if not basis.held:  # a held letter's submit job is written when its consent is given
            outbox.enqueue(session, "submit_letter", account_id=account_id, letter_id=letter.id,
                           dedupe_key=f"submit:{letter.id}", max_attempts=services.settings.job_max_attempts, new=True)
    except BaseException:
        # A write still reading a temporary file must finish before the caller closes that file.
        for write in writes:
            write.exception()
        raise
    for write in writes:
        write.result()  # re-raises a failed write: the caller then rolls the letter back
    return letter, queued.data


def _write_lock(services: Services, session: Session, letter: Letter) -> datetime | None:
    """The storage lock to write ``letter``'s objects with (None: the store's default, or no lock)."""
    if not services.blobs.enforces_retention:
        return None  # the filesystem ignores locks: no read for nothing
    account = session.get(Account, letter.account_id)
    return write_lock_until(letter, account) if account is not None else None


def accept_letter(
    services: Services,
    session: Session,
    account_id: str,
    payload: LetterIn,
    uploaded: list[IncomingDocument] | None = None,
    spooled: Mapping[str, spool.SpooledBase64] | None = None,
) -> tuple[Letter, dict[str, Any]]:
    """From a validated request to a stored, queued letter, in the caller's transaction; returns
    the letter and its public shape. ``spooled``: see ``load_documents``.

    The documents are, in order: the rendered template (if any), the downloaded URLs, the
    uploaded files. Used by ``POST /v1/letters`` and the signed intake endpoint.
    """
    # Downloads first: they take no database lock (rendering may read custom templates).
    downloaded = load_documents(services, payload.documents, spooled)
    try:
        return _accept(services, session, account_id, payload, downloaded, uploaded)
    finally:
        close_documents(downloaded)  # archived (or refused) by now: the temporary files go


def _accept(services: Services, session: Session, account_id: str, payload: LetterIn,
            downloaded: list[IncomingDocument],
            uploaded: list[IncomingDocument] | None) -> tuple[Letter, dict[str, Any]]:
    documents: list[IncomingDocument] = []
    rendered = None
    if payload.template:
        from connector import rendering  # the template engine is loaded only when used
        try:
            rendered = rendering.render_for_letter(
                session, account_id, payload.template, payload.data or {}, services.clock()
            )
        except (rendering.TemplateNotFound, rendering.TemplateDataError, rendering.TemplateSourceError) as exc:
            # One mapping for /v1/letters and /v1/templates: 404, or 422 naming every field / the line.
            raise rendering.as_bridge_error(exc) from None
        documents.append(IncomingDocument(rendered.filename, rendered.pdf))
    documents += downloaded
    documents += uploaded or []
    template = (rendered.template_name, rendered.template_version) if rendered is not None else None
    return create_letter(services, session, account_id, payload, documents, template)


_iso = shapes.iso


class StoredProof(NamedTuple):
    """A provider's proof already in the archive, as ``record_event`` records it: counted and
    hashed while it was downloaded, so that its bytes are never held here."""

    ref: ProofRef
    size: int
    sha256: str  # hex
    storage_key: str


@dataclass
class KnownRows:
    """A letter's documents and proofs as a caller already holds them, in order (``record_event``)."""

    documents: list[Document]
    proofs: list[Proof] = field(default_factory=list)
    # The letter's provider id is set in this very transaction (its submission): no provider event
    # of it can be recorded yet, so ``record_event`` need not look each one up (one query per event).
    new_at_provider: bool = False


def letter_to_dict(
    session: Session,
    letter: Letter,
    public_url: str,
    *,
    documents: list[Document] | None = None,
    proofs: list[Proof] | None = None,
) -> dict[str, Any]:
    """The letter as the API, the event feed and the webhooks show it (``documents`` and
    ``proofs`` may be given by a caller that has them, in order, to save the queries)."""
    if documents is None:
        documents = list(session.scalars(select(Document).where(Document.letter_id == letter.id)
                                         .order_by(Document.position)))
    if proofs is None:
        proofs = list(session.scalars(select(Proof).where(Proof.letter_id == letter.id)
                                      .order_by(Proof.created_at)))
    base = f"{public_url}/v1/letters/{letter.id}"
    return shapes.Letter.dump(**{
        "id": letter.id,
        "object": "letter",
        "status": letter.status,
        "reference": letter.reference,
        "recipient": {
            "type": letter.recipient_type,
            "email": letter.recipient_email,
            "first_name": letter.recipient_first_name,
            "last_name": letter.recipient_last_name,
            "company": letter.recipient_company,
        },
        "message": letter.message,
        "metadata": letter.metadata_ or {},
        "documents": [
            {"id": d.id, "filename": d.filename, "size": d.size, "sha256": d.sha256} for d in documents
        ],
        "template": (
            {"name": letter.template_name, "version": letter.template_version} if letter.template_name else None
        ),
        "provider": letter.provider,
        "provider_letter_id": letter.provider_letter_id,
        "sandbox_outcome": letter.sandbox_outcome,
        "failure": (
            {"code": letter.failure_code, "message": letter.failure_reason} if letter.status == "failed" else None
        ),
        "proofs": [
            {"kind": p.kind, "filename": p.filename, "sha256": p.sha256, "size": p.size,
             "url": f"{base}/proofs/{p.kind}"}
            for p in proofs
        ],
        "created_at": _iso(letter.created_at),
        "updated_at": _iso(letter.updated_at),
        "deposited_at": _iso(letter.deposited_at),
        "completed_at": _iso(letter.completed_at),
        "links": {"self": base, "document": f"{base}/document", "evidence": f"{base}/evidence"},
    })


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event as the feed shows it (and as webhooks carry it)."""
    return shapes.Event.dump(
        id=event.id,
        object="event",
        type=event.type,
        occurred_at=_iso(event.occurred_at),
        created_at=_iso(event.created_at),
        letter_id=event.letter_id,
        provider=event.provider,
        data=event.data,
    )


def record_event(
    session: Session,
    letter: Letter,
    status: LetterStatus,
    *,
    occurred_at: datetime,
    provider: str | None,
    provider_event_id: str | None,
    raw: dict[str, Any],
    proof: StoredProof | None = None,
    failure: tuple[str, str] | None = None,
    public_url: str = "",
    new_letter_documents: list[Document] | None = None,
    hooks: list[Hook] | None = None,
    known: KnownRows | None = None,
) -> Event | None:
    """Move ``letter`` to ``status`` and write everything that goes with it.

    Returns the new event, or None when it changes nothing: a duplicate provider report
    (same ``provider_event_id``) or a transition the lifecycle does not allow (late, out of
    order, or after a final status). ``proof``: the event's proof, stored already.
    ``new_letter_documents``: the rows of a letter being created (it has no proof yet), which
    saves re-reading them. ``hooks``: the account's active subscriptions, if the caller read them.
    ``known``: the letter's documents and proofs as the caller has them (the event's copy of the
    letter is built from them, not read back); this event's proof is appended to it.
    """
    if provider_event_id is not None and not (known is not None and known.new_at_provider):
        # Events are flushed as they are added (below), so the pending changes are the letter's
        # own: they go out with its new status rather than in an UPDATE of their own.
        with session.no_autoflush:
            seen = session.scalar(
                select(Event.id).where(Event.provider == provider, Event.provider_event_id == provider_event_id)
            )
        if seen is not None:
            return None
    current = LetterStatus(letter.status)
    if status != LetterStatus.QUEUED or current != LetterStatus.QUEUED:
        if status not in ALLOWED_TRANSITIONS.get(current, frozenset()):
            log.info("letter %s: ignoring %s after %s", letter.id, status, current)
            return None
    letter.status = status
    letter.updated_at = occurred_at if occurred_at > letter.updated_at else letter.updated_at
    if status == LetterStatus.DEPOSITED:
        letter.deposited_at = occurred_at
    if status in FINAL_STATUSES:
        letter.completed_at = occurred_at
    if failure is not None:
        letter.failure_code, letter.failure_reason = failure
    new_letter = new_letter_documents is not None
    if hooks is None:
        # Read before the event is added, so that the inserts below go out in as few flushes as possible.
        hooks = active_hooks(session, letter.account_id)
    event_id = new_id("evt")
    proof_row = None
    if proof is not None:
        ref = proof.ref
        proof_row = Proof(
            letter_id=letter.id,
            kind=ref.kind,
            filename=ref.filename or f"{PROOF_KIND_BY_STATUS.get(status, ref.kind)}-{letter.id}.pdf",
            size=proof.size,
            sha256=proof.sha256,
            storage_key=proof.storage_key,
            source_url=ref.url,
            event_id=event_id,
        )
        session.add(proof_row)
    event = Event(
        id=event_id,
        account_id=letter.account_id,
        letter_id=letter.id,
        type=f"letter.{status}",
        occurred_at=occurred_at,
        provider=provider,
        provider_event_id=provider_event_id,
        data=(
            # A new letter has no proof yet and its documents are in hand: nothing to read back.
            letter_to_dict(session, letter, public_url, documents=new_letter_documents, proofs=[])
            if new_letter
            else letter_to_dict(session, letter, public_url, documents=known.documents,
                                proofs=known.proofs + ([proof_row] if proof_row is not None else []))
            if known is not None
            # The queries autoflush the letter's changes and the proof added above, so they show.
            else letter_to_dict(session, letter, public_url)
        ),
        raw=raw,
    )
    if known is not None and proof_row is not None:
        known.proofs.append(proof_row)
    session.add(event)
    session.flush()  # the journal line carries the event's sequence number, assigned on insert
    journal.append_event(session, letter, event, proofs=[proof_row] if proof_row is not None else [],
                         first_line=new_letter)
    enqueue_deliveries(session, event, hooks)
    if status in FINAL_STATUSES and letter.retain_until is not None:
        # Its retention end was fixed just now (journal.append_event): the storage locks of its
        # objects are raised to it by a job committed with this event, so no object of an ended
        # letter waits for the ``archive lock`` cron. A letter ends once: the key cannot exist yet.
        outbox.enqueue(session, LOCK_RETENTION_JOB, account_id=letter.account_id, letter_id=letter.id,
                       dedupe_key=f"lock:{letter.id}", new=True)
    return event
