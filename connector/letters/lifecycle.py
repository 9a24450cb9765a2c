"""The letter's journey through the provider: submit once, then follow it to a final status.

Provider calls never run inside a database transaction: a slow provider must not hold locks,
and a crash between the call and the commit is covered by the "look it up first" rule below.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.delivery import outbox
from connector.letters.service import record_event
from connector.lib import spool
from connector.lib.failpoints import failpoint
from connector.models import Document, Event, Job, Letter
from connector.providers.base import (
    FINAL_STATUSES,
    LetterStatus,
    OutgoingDocument,
    OutgoingLetter,
    Provider,
    ProviderError,
    ProviderEvent,
    Recipient,
)
from connector.services import Services

log = logging.getLogger(__name__)


def _outgoing(services: Services, letter: Letter, documents: list[Document]) -> OutgoingLetter:
    context: dict[str, Any] = {}
    if letter.submit_context_encrypted:
        context = services.encryptor.decrypt_json(letter.submit_context_encrypted)
    return OutgoingLetter(
        id=letter.id,
        recipient=Recipient(
            type=letter.recipient_type,
            email=letter.recipient_email,
            first_name=letter.recipient_first_name,
            last_name=letter.recipient_last_name,
            company=letter.recipient_company,
        ),
        documents=tuple(_outgoing_document(services, d) for d in documents),
        message=letter.message,
        reference=letter.reference,
        sandbox_outcome=letter.sandbox_outcome,
        callback_url=f"{services.settings.public_url}/callbacks/{letter.provider}/{letter.callback_token}",
        submit_context=context,
    )


def _outgoing_document(services: Services, document: Document) -> OutgoingDocument:
    """A document as the provider adapter reads it: bytes when small; when large, a reader opened
    only if the adapter reads it (the sandbox never does), so that the worker does not hold it."""
    if document.size <= spool.MEMORY_BYTES:
        return OutgoingDocument(document.filename, services.blobs.get(document.storage_key), document.sha256)
    # Read through once now (bounded memory): a changed archive object fails the submission here,
    # as a whole read would, rather than inside the adapter.
    with services.blobs.open(document.storage_key) as reader:
        while reader.read(spool.CHUNK_BYTES):
            pass
    return OutgoingDocument(document.filename, functools.partial(services.blobs.open, document.storage_key),
                            document.sha256)


def poll_delay(services: Services, letter: Letter, now: datetime) -> float:
    """How long to wait before re-reading an open letter: often while young, rarely when old."""
    if letter.provider == "sandbox":
        return services.settings.sandbox_step_seconds
    age = (now - letter.created_at).total_seconds()
    # 1 min for the first hour, then a tenth of the age, at most 6 h (the 15-day window is long).
    return 60.0 if age < 3600 else min(age / 10, 6 * 3600.0)


def schedule_poll(session: Any, letter: Letter, run_at: datetime) -> None:
    outbox.enqueue(session, "poll_letter", account_id=letter.account_id, letter_id=letter.id,
                   dedupe_key=f"poll:{letter.id}", run_at=run_at, max_attempts=50)


def apply_provider_events(services: Services, provider: Provider, letter_id: str,
                          events: tuple[ProviderEvent, ...]) -> bool:
    """Record the provider's events we have not seen yet; True when the letter is final."""
    with services.db.transaction() as session:
        seen = set(session.scalars(select(Event.provider_event_id).where(Event.letter_id == letter_id)))
    for provider_event in events:
        if provider_event.provider_event_id in seen:
            continue
        proof = None
        if provider_event.proof is not None:
            # Downloaded outside the transaction; stored byte-exact before the row refers to it.
            content = provider_event.proof.content
            if content is None:
                content = provider.download_proof(provider_event.proof)
            proof = (provider_event.proof, content, services.blobs.put(content))
        status = provider_event.status
        with services.db.transaction() as session:
            letter = session.get(Letter, letter_id, with_for_update=True)
            assert letter is not None
            raw = dict(provider_event.raw)
            if provider_event.reported_document_sha256:
                raw["reported_document_sha256"] = list(provider_event.reported_document_sha256)
            if status not in set(LetterStatus):
                log.warning("letter %s: unknown provider status kept as raw data: %s", letter_id, status)
                continue
            record_event(
                session, letter, LetterStatus(status),
                occurred_at=provider_event.occurred_at, provider=letter.provider,
                provider_event_id=provider_event.provider_event_id, raw=raw, proof=proof,
                public_url=services.settings.public_url, failure=provider_event.failure,
            )
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id)
        assert letter is not None
        return LetterStatus(letter.status) in FINAL_STATUSES


def _fail_letter(services: Services, letter_id: str, code: str, message: str) -> None:
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED:
            return
        record_event(session, letter, LetterStatus.FAILED, occurred_at=services.clock(), provider=letter.provider,
                     provider_event_id=None, raw={"code": code, "message": message}, failure=(code, message),
                     public_url=services.settings.public_url)


@outbox.job_handler(
    "submit_letter",
    pool="provider",
    on_dead=lambda services, job, reason: _fail_letter(
        services, str(job.letter_id), "submission_failed", f"The provider could not be reached: {reason}"
    ),
)
def submit_letter(services: Services, job: Job) -> None:
    """Submit a queued letter exactly once.

    1. Mark the attempt (committed) before calling the provider.
    2. If an earlier attempt was marked, ask the provider whether it already has the letter
       (by our reference) and adopt it instead of sending again.
    3. Record the provider's id and first events; schedule the follow-up poll.
    """
    letter_id = str(job.letter_id)
    failpoint("submit.before_mark")
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED or letter.provider_letter_id:
            return
        maybe_sent = letter.submit_attempted_at is not None
        letter.submit_attempted_at = services.clock()
        documents = list(session.scalars(select(Document).where(Document.letter_id == letter_id)
                                         .order_by(Document.position)))
        provider = services.provider_for_account(session, letter.account_id)
        outgoing = _outgoing(services, letter, documents)
    failpoint("submit.before_provider")
    try:
        provider_letter_id = provider.find_by_reference(letter_id) if maybe_sent else None
    except ProviderError as exc:
        # Without the answer we cannot know whether the letter is already at the provider:
        # never submit blind. Transient → retry later; permanent → dead-letter, reason kept.
        if exc.permanent:
            raise outbox.PermanentError(f"could not check whether the provider already has it: {exc.message}") from exc
        raise outbox.RetryableError(f"{exc.code}: {exc.message}", retry_after=exc.retry_after) from exc
    events: tuple[ProviderEvent, ...] = ()
    if provider_letter_id is None:
        try:
            result = provider.submit(outgoing)
        except ProviderError as exc:
            if exc.permanent:
                _fail_letter(services, letter_id, exc.code, exc.message)
                return
            raise outbox.RetryableError(f"{exc.code}: {exc.message}", retry_after=exc.retry_after) from exc
        provider_letter_id, events = result.provider_letter_id, result.events
        failpoint("submit.after_provider")
    else:
        log.info("letter %s was already at the provider as %s; not sending again", letter_id, provider_letter_id)
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        assert letter is not None
        letter.provider_letter_id = provider_letter_id
        letter.submit_context_encrypted = None  # one-time sender proof: no longer needed, not kept
        schedule_poll(session, letter, services.clock() + timedelta(seconds=poll_delay(services, letter,
                                                                                      services.clock())))
    failpoint("submit.after_commit")
    if events:
        apply_provider_events(services, provider, letter_id, events)
    failpoint("submit.after_events")


@outbox.job_handler("poll_letter", pool="provider")
def poll_letter(services: Services, job: Job) -> None:
    """Re-read an open letter at its provider; reschedule itself until the letter is final."""
    letter_id = str(job.letter_id)
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id)
        if letter is None or letter.provider_letter_id is None or LetterStatus(letter.status) in FINAL_STATUSES:
            return
        provider = services.provider_for_account(session, letter.account_id)
        provider_letter_id = letter.provider_letter_id
    try:
        state = provider.fetch_state(provider_letter_id)
    except ProviderError as exc:
        if exc.permanent:
            raise outbox.PermanentError(f"{exc.code}: {exc.message}") from exc
        raise outbox.RetryableError(f"{exc.code}: {exc.message}", retry_after=exc.retry_after) from exc
    failpoint("poll.after_fetch")
    if apply_provider_events(services, provider, letter_id, state.events):
        failpoint("poll.after_events")
        return
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id)
        assert letter is not None
        delay = poll_delay(services, letter, services.clock())
    raise outbox.Reschedule(delay)
