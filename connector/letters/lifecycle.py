"""The letter's journey through the provider: submit once, then follow it to a final status.

Provider calls never run inside a database transaction: a slow provider must not hold locks,
and a crash between the call and the commit is covered by the "look it up first" rule below.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.delivery import outbox
from connector.delivery.hooks import active_hooks
from connector.evidence.retention import write_lock_until
from connector.letters.documents import put_stream_in_background
from connector.letters.service import KnownRows, StoredProof, record_event
from connector.lib import spool
from connector.lib.failpoints import failpoint
from connector.lib.spool import HashingFile
from connector.models import Account, Document, Event, Job, Letter
from connector.providers.base import (
    FINAL_STATUSES,
    LetterStatus,
    OutgoingDocument,
    OutgoingLetter,
    ProofRef,
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
                            document.sha256, document.size)


def poll_delay(services: Services, letter: Letter, now: datetime) -> float:
    """How long to wait before re-reading an open letter: often while young, rarely when old."""
    if letter.provider == "sandbox":
        return services.settings.sandbox_step_seconds
    age = (now - letter.created_at).total_seconds()
    # 1 min for the first hour, then a tenth of the age, at most 6 h (the 15-day window is long).
    return 60.0 if age < 3600 else min(age / 10, 6 * 3600.0)


def schedule_poll(session: Any, letter: Letter, run_at: datetime, *, new: bool = False) -> None:
    """Re-read ``letter`` at its provider at ``run_at`` (one poll job per letter, revived when it
    exists; ``new=True``: the caller knows it does not, and the lookup is saved)."""
    outbox.enqueue(session, "poll_letter", account_id=letter.account_id, letter_id=letter.id,
                   dedupe_key=f"poll:{letter.id}", run_at=run_at, max_attempts=50, new=new)


Prepared = list[tuple[ProviderEvent, StoredProof | None]]


def prepare_provider_events(services: Services, provider: Provider, events: tuple[ProviderEvent, ...],
                            seen: set[str | None], letter_id: str) -> Prepared:
    """The events not seen yet, with their proofs downloaded and stored, byte-exact, before any row
    refers to them (outside any transaction: a download may be slow)."""
    prepared: list[tuple[ProviderEvent, tuple[ProofRef, int, str] | None]] = []
    writes = []
    lock = _proof_lock(services, letter_id, events, seen)
    seen = set(seen)
    for provider_event in events:
        if provider_event.provider_event_id in seen:
            continue
        if provider_event.provider_event_id is not None:
            seen.add(provider_event.provider_event_id)  # listed twice by the provider: once here too
        proof = None
        ref = provider_event.proof
        if ref is not None and ref.content is not None:
            # Made by the provider in memory (the sandbox's, a few kilobytes): stored as they are.
            # Written on the archive's writer threads, side by side: each durable write waits on the disk.
            writes.append(services.blobs.put_in_background(ref.content, retain_until=lock))
            proof = (ref, len(ref.content), hashlib.sha256(ref.content).hexdigest())
        elif ref is not None:
            downloaded = provider.download_proof(ref)
            writes.append(_store_downloaded(services, downloaded, lock))
            proof = (ref, downloaded.size, downloaded.sha256)
        prepared.append((provider_event, proof))
    keys = iter([write.result() for write in writes])  # every proof durable before a row refers to it
    return [(event, None if proof is None else _stored(*proof, next(keys))) for event, proof in prepared]


def _store_downloaded(services: Services, downloaded: HashingFile, lock: datetime | None) -> Future[str]:
    """Start the archive write of a downloaded proof, which then closes its file: a large one is
    streamed from its temporary file (``put_stream``), a small one written from memory."""
    if not downloaded.in_memory:
        return put_stream_in_background(services.blobs, downloaded.rewound(), retain_until=lock)
    with downloaded:
        content = downloaded.rewound().read()
    return services.blobs.put_in_background(content, retain_until=lock)


def _stored(ref: ProofRef, size: int, sha256: str, key: str) -> StoredProof:
    # The archive's key is the hash of what it read back from the temporary file: the hash taken
    # during the download must be that one, or the row would describe other bytes than the archive's.
    if key != f"sha256:{sha256}":
        raise OSError(f"the {ref.kind} proof changed on its way to the archive ({key}, sha256:{sha256})")
    return StoredProof(ref, size, sha256, key)


def _proof_lock(services: Services, letter_id: str, events: tuple[ProviderEvent, ...],
                seen: set[str | None]) -> datetime | None:
    """The storage lock for the letter's new proofs (``retention.write_lock_until``); None when the
    store has no locks or no proof is coming (then nothing is read)."""
    if not services.blobs.enforces_retention or not any(
            e.proof is not None and e.provider_event_id not in seen for e in events):
        return None
    with services.db.read() as session:
        letter = session.get(Letter, letter_id)
        account = session.get(Account, letter.account_id) if letter is not None else None
        return write_lock_until(letter, account) if letter is not None and account is not None else None


def record_provider_events(services: Services, session: Any, letter: Letter, prepared: Prepared,
                           known: KnownRows | None = None) -> bool:
    """Record prepared provider events in the caller's transaction (``letter`` locked); True when
    the letter is final. One transaction for all of them: one commit, not one per event, and one
    read of the account's subscriptions for all of them. ``known``: the letter's documents and
    proofs when the caller holds them (``record_event``)."""
    # Not flushed first: the letter's pending changes (its provider id, at a submission) then go
    # out in the same UPDATE as its new status (the subscriptions do not depend on them).
    with session.no_autoflush:
        hooks = active_hooks(session, letter.account_id) if prepared else None
    for provider_event, proof in prepared:
        status = provider_event.status
        if status not in set(LetterStatus):
            log.warning("letter %s: unknown provider status kept as raw data: %s", letter.id, status)
            continue
        raw = dict(provider_event.raw)
        if provider_event.reported_document_sha256:
            raw["reported_document_sha256"] = list(provider_event.reported_document_sha256)
        record_event(
            session, letter, LetterStatus(status),
            occurred_at=provider_event.occurred_at, provider=letter.provider,
            provider_event_id=provider_event.provider_event_id, raw=raw, proof=proof,
            public_url=services.settings.public_url, failure=provider_event.failure, hooks=hooks, known=known,
        )
    return LetterStatus(letter.status) in FINAL_STATUSES


def apply_provider_events(services: Services, provider: Provider, letter_id: str,
                          events: tuple[ProviderEvent, ...]) -> bool:
    """Record the provider's events we have not seen yet; True when the letter is final."""
    with services.db.read() as session:
        seen = set(session.scalars(select(Event.provider_event_id).where(Event.letter_id == letter_id)))
    prepared = prepare_provider_events(services, provider, events, seen, letter_id)
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        assert letter is not None
        return record_provider_events(services, session, letter, prepared)


def _fail_letter(services: Services, letter_id: str, code: str, message: str) -> None:
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED:
            return
        record_event(session, letter, LetterStatus.FAILED, occurred_at=services.clock(), provider=letter.provider,
                     provider_event_id=None, raw={"code": code, "message": message}, failure=(code, message),
                     public_url=services.settings.public_url)


def _mark_attempt(session: Any, job: Job) -> None:
    """Claim hook of ``submit_letter``: mark the attempt in the claim's own transaction, so that it
    is committed before the provider is called without a commit of its own; notes for the handler
    whether an earlier attempt was marked (the provider may then have the letter already)."""
    letter = session.get(Letter, str(job.letter_id), with_for_update=True)
    if letter is None or letter.status != LetterStatus.QUEUED or letter.provider_letter_id:
        return
    maybe_sent = letter.submit_attempted_at is not None
    letter.submit_attempted_at = job.updated_at  # the claim's time
    # The letter goes with the note: once the claim commits, nothing but this submission changes
    # it (a cancel needs ``submit_attempted_at`` empty, under the same row lock), so the handler
    # need not read it again.
    outbox.note_claim(job, (maybe_sent, letter))


@outbox.job_handler(
    "submit_letter",
    pool="provider",
    on_dead=lambda services, job, reason: _fail_letter(
        services, str(job.letter_id), "submission_failed", f"The provider could not be reached: {reason}"
    ),
    on_claim=_mark_attempt,
)
def submit_letter(services: Services, job: Job) -> None:
    """Submit a queued letter exactly once.

    1. Mark the attempt (committed) before calling the provider: done by the claim (``_mark_attempt``).
    2. If an earlier attempt was marked, ask the provider whether it already has the letter
       (by our reference) and adopt it instead of sending again.
    3. Record the provider's id and first events, and the job's end, in one transaction; schedule
       the follow-up poll unless the letter is already final.
    """
    letter_id = str(job.letter_id)
    failpoint("submit.before_mark")
    noted: tuple[bool, Letter] | None = outbox.claim_note(job)
    # Without the claim's note (the letter was not to be sent then, or another path claimed the
    # job), the handler marks the attempt itself, as a transaction of its own.
    with services.db.read() if noted is not None else services.db.transaction() as session:
        if noted is None:
            found = session.get(Letter, letter_id, with_for_update=True)
            if found is None or found.status != LetterStatus.QUEUED or found.provider_letter_id:
                return
            letter, maybe_sent = found, found.submit_attempted_at is not None
            letter.submit_attempted_at = services.clock()
        else:
            maybe_sent, letter = noted
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
    # The events the provider reported at once are recorded with its id, and the job's end with
    # them: one commit. Their proofs are stored first (a crash here leaves blobs nothing refers to,
    # and the next attempt finds the letter at the provider and adopts it).
    prepared = prepare_provider_events(services, provider, events, set(), letter_id)
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        assert letter is not None
        # Proofs and polls come only with a provider id: a letter that has none yet (the usual case;
        # not when a run whose lease had expired got here first) has no proof and no poll job, and
        # its documents, read above, are all its events' copies of it need (three queries fewer).
        first = letter.provider_letter_id is None
        letter.provider_letter_id = provider_letter_id
        letter.submit_context_encrypted = None  # one-time sender proof: no longer needed, not kept
        # A first submission's events are new at the provider (prepare_provider_events drops an
        # event the provider listed twice): record_event need not look them up.
        known = KnownRows(documents, new_at_provider=True) if first else None
        final = record_provider_events(services, session, letter, prepared, known)
        if not final:  # a letter already final (the sandbox without step delay) has nothing to follow
            now = services.clock()
            schedule_poll(session, letter, now + timedelta(seconds=poll_delay(services, letter, now)), new=first)
        outbox.complete(session, job)
    failpoint("submit.after_commit")
    failpoint("submit.after_events")


@outbox.job_handler("poll_letter", pool="provider")
def poll_letter(services: Services, job: Job) -> None:
    """Re-read an open letter at its provider; reschedule itself until the letter is final."""
    letter_id = str(job.letter_id)
    with services.db.read() as session:
        letter = session.get(Letter, letter_id)
        if letter is None or letter.provider_letter_id is None or LetterStatus(letter.status) in FINAL_STATUSES:
            return
        provider = services.provider_for_account(session, letter.account_id)
        provider_letter_id = letter.provider_letter_id
        seen = set(session.scalars(select(Event.provider_event_id).where(Event.letter_id == letter_id)))
    try:
        state = provider.fetch_state(provider_letter_id)
    except ProviderError as exc:
        if exc.permanent:
            raise outbox.PermanentError(f"{exc.code}: {exc.message}") from exc
        raise outbox.RetryableError(f"{exc.code}: {exc.message}", retry_after=exc.retry_after) from exc
    failpoint("poll.after_fetch")
    prepared = prepare_provider_events(services, provider, state.events, seen, letter_id)
    # The new events and the job's next run (or its end) in one commit.
    with services.db.transaction() as session:
        letter = session.get(Letter, letter_id, with_for_update=True)
        assert letter is not None
        if record_provider_events(services, session, letter, prepared):
            outbox.complete(session, job)
        else:
            now = services.clock()
            outbox.complete(session, job, run_at=now + timedelta(seconds=poll_delay(services, letter, now)))
    failpoint("poll.after_events")
