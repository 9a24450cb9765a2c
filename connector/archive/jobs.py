"""The ``lock_retention`` job: when a letter ends, raise the storage locks of its objects to its
retention end, so that the storage refuses to delete them early without waiting for a cron.

Enqueued by ``letters.service.record_event`` in the transaction that fixes the letter's retention
end (its final status). Objects were written locked for at least the account's retention from the
letter's creation (``retention.write_lock_until``); this raises each one to the exact end. Safe to
run again: ``BlobStore.retain`` only ever extends a lock. ``lre-bridge archive lock`` remains the
catch-up for objects written before this job existed (or whose job died).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.archive.models import ArchivedPackage
from connector.delivery import outbox
from connector.evidence.retention import retention_ends_at
from connector.models import Account, Document, Job, Letter, Proof
from connector.services import Services

LOCK_RETENTION_JOB = "lock_retention"
LOCK_ACCOUNT_JOB = "lock_account_retention"
# Ended letters handed to their own lock job per run of the account-wide job (a bounded transaction).
LETTERS_PER_RUN = 200


def enqueue_account_relock(session: Session, account_id: str) -> None:
    """After the account's retention was raised: every ended letter's locks are raised to its new
    end, page by page (in the caller's transaction, so only a committed raise is followed)."""
    outbox.enqueue(session, LOCK_ACCOUNT_JOB, account_id=account_id, payload={"after": ""},
                   dedupe_key=f"lock-account:{account_id}")


@outbox.job_handler(LOCK_ACCOUNT_JOB)
def lock_account_retention(services: Services, job: Job) -> None:
    """One page of the account's ended letters: a ``lock_retention`` job each, then the next page."""
    if not services.blobs.enforces_retention:
        return
    after = str((job.payload or {}).get("after") or "")
    with services.db.transaction() as session:
        ids = list(session.scalars(
            select(Letter.id).where(Letter.account_id == job.account_id, Letter.retain_until.is_not(None),
                                    Letter.id > after).order_by(Letter.id).limit(LETTERS_PER_RUN)))
        for letter_id in ids:
            outbox.enqueue(session, LOCK_RETENTION_JOB, account_id=job.account_id, letter_id=letter_id,
                           dedupe_key=f"lock:{letter_id}")
        if len(ids) == LETTERS_PER_RUN:  # more to come: the next page is a job of its own
            outbox.enqueue(session, LOCK_ACCOUNT_JOB, account_id=job.account_id, payload={"after": ids[-1]},
                           dedupe_key=f"lock-account:{job.account_id}:{ids[-1]}")


@outbox.job_handler(LOCK_RETENTION_JOB)
def lock_retention(services: Services, job: Job) -> None:
    """Raise the lock of the letter's documents, proofs and evidence packages to its retention end."""
    if not services.blobs.enforces_retention:
        return  # the filesystem (or S3 with LRE_STORAGE_LOCK_MODE=off) has no lock to raise
    with services.db.read() as session:
        letter = session.get(Letter, str(job.letter_id))
        if letter is None:
            return  # deleted since (its retention had ended): nothing left to keep
        account = session.get(Account, letter.account_id)
        until = retention_ends_at(letter, account) if account is not None else letter.retain_until
        if until is None:
            return
        keys = sorted({
            *session.scalars(select(Document.storage_key).where(Document.letter_id == letter.id)),
            *session.scalars(select(Proof.storage_key).where(Proof.letter_id == letter.id)),
            *session.scalars(select(ArchivedPackage.storage_key).where(ArchivedPackage.letter_id == letter.id)),
        })
    # Outside any transaction: each object is a few storage requests.
    for key in keys:
        try:
            services.blobs.retain(key, until)
        except Exception as exc:  # noqa: BLE001 - the storage unreachable or refusing: try again later
            # The locks already raised stay raised; the next run skips them (retain compares first).
            raise outbox.RetryableError(f"could not lock {key} until {until.isoformat()}: "
                                        f"{type(exc).__name__}: {exc}") from exc
