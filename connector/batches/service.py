"""Storing a validated batch, reading its progress, cancelling it, and noticing its completion.

Everything here runs in the caller's transaction. ``store_batch`` is called only once every row
has been validated (``rows.validate_rows``): it writes the batch, its documents, one item and one
outbox job per row, and the ``batch.created`` event, together or not at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from connector import shapes
from connector.batches import shapes as batch_shapes
from connector.batches.models import Batch, BatchDocument, BatchItem
from connector.batches.rows import ValidRow
from connector.batches.shapes import CANCELLED, COUNT_KEYS
from connector.delivery import outbox
from connector.delivery.events import record_account_event
from connector.letters.documents import IncomingDocument, put_stream_in_background
from connector.letters.service import record_event
from connector.models import Letter, TemplateVersion, new_id
from connector.providers.base import FINAL_STATUSES, LetterStatus
from connector.rendering.library import TemplateSpec, _spec_from_row, builtin_templates
from connector.services import Services

BATCH_LETTER_JOB = "batch_letter"
BATCH_WATCH_JOB = "batch_watch"
ROWS_PER_JOB = 5


iso = shapes.iso  # one timestamp format for every answer


@dataclass(frozen=True)
class CommonDocument:
    role: str  # "letter" | "attachment"
    document: IncomingDocument


def spec_for(session: Session, batch: Batch) -> TemplateSpec:
    """The exact template version the batch was accepted with (a later upload changes nothing)."""
    assert batch.template_name is not None and batch.template_version is not None
    if batch.template_origin == "custom":
        row = session.scalar(select(TemplateVersion).where(
            TemplateVersion.account_id == batch.account_id, TemplateVersion.name == batch.template_name,
            TemplateVersion.version == batch.template_version))
        if row is None:
            raise LookupError(f"template {batch.template_name} v{batch.template_version} is gone")
        return _spec_from_row(row)
    return builtin_templates()[batch.template_name]


def store_batch(
    services: Services,
    session: Session,
    account_id: str,
    *,
    spec: TemplateSpec | None,
    common_data: dict[str, Any],
    common: dict[str, Any],
    documents: list[CommonDocument],
    rows: list[ValidRow],
) -> Batch:
    """Write the batch, its documents (archived once each), one item and one job per row, and
    ``batch.created``. The rows must already be valid."""
    now = services.clock()
    # Archived from their files when large (never whole in memory), as a single letter's documents are.
    writes = [services.blobs.put_in_background(d.document.content) if d.document.in_memory
              else put_stream_in_background(services.blobs, d.document.reader()) for d in documents]
    batch = Batch(
        id=new_id("bat"), account_id=account_id, status="processing",
        template_name=spec.name if spec else None, template_version=spec.version if spec else None,
        template_origin=spec.origin if spec else None, common_data=common_data,
        message=common.get("message"), reference=common.get("reference"), metadata_=common.get("metadata") or {},
        sandbox_outcome=common.get("sandbox_outcome"), total=len(rows), created_at=now, updated_at=now,
    )
    session.add(batch)
    session.flush()  # the batch row first: its documents and items refer to it
    session.add_all([
        BatchDocument(id=new_id("bdoc"), batch_id=batch.id, position=position, role=d.role,
                      filename=d.document.filename, size=d.document.size, sha256=d.document.sha256,
                      storage_key="sha256:" + d.document.sha256)  # the key every store gives these bytes
        for position, d in enumerate(documents)
    ])
    # Core inserts, not ORM objects: building a thousand instances costs more than the rows' SQL.
    items = []
    for valid in rows:
        letter = valid.letter
        recipient = letter.recipient
        items.append({
            "id": new_id("bit"), "batch_id": batch.id, "row_number": valid.row, "status": "pending",
            "recipient_type": recipient.type, "recipient_email": recipient.email.lower(),
            "recipient_first_name": recipient.first_name, "recipient_last_name": recipient.last_name,
            "recipient_company": recipient.company, "legal_basis": getattr(recipient, "legal_basis", None),
            "reference": letter.reference, "message": letter.message, "sandbox_outcome": letter.sandbox_outcome,
            "metadata_": letter.metadata, "data": valid.data, "letter_id": None, "failure_code": None,
            "failure_reason": None, "created_at": now, "updated_at": now,
        })
    if items:
        session.execute(insert(BatchItem), items)
    attempts = services.settings.job_max_attempts
    # A few rows per job: far fewer job rows to write at once, and still enough jobs to keep every
    # worker busy. Each row is made in its own transaction, so a rerun only makes the missing ones.
    for start in range(0, len(items), ROWS_PER_JOB):
        chunk = [item["id"] for item in items[start:start + ROWS_PER_JOB]]
        outbox.enqueue(session, BATCH_LETTER_JOB, account_id=account_id, payload={"item_ids": chunk},
                       dedupe_key=f"batch-letter:{chunk[0]}", max_attempts=attempts, new=True)
    outbox.enqueue(session, BATCH_WATCH_JOB, account_id=account_id, payload={"batch_id": batch.id},
                   dedupe_key=f"batch-watch:{batch.id}", max_attempts=50, new=True)
    session.flush()
    record_account_event(session, account_id, "batch.created", batch_to_dict(session, batch, services), now)
    for write in writes:
        write.result()  # durable before the rows referring to it commit
    return batch


def batch_counts(session: Session, batch_id: str) -> dict[str, int]:
    """How many of the batch's letters are at each stage (see ``COUNT_KEYS``)."""
    counts: Counter[str] = Counter(dict.fromkeys(COUNT_KEYS, 0))
    for status, number in session.execute(
        select(BatchItem.status, func.count()).where(BatchItem.batch_id == batch_id).group_by(BatchItem.status)
    ):
        if status == "pending":
            counts["pending"] += number
        elif status in (CANCELLED, "failed"):
            counts[status] += number
    # Grouped by plain columns: PostgreSQL does not match ``failure_code = :param`` in the select
    # list with the same expression in GROUP BY (two parameters), and there are few failure codes.
    submitted_expr = Letter.provider_letter_id.is_not(None)
    rows = session.execute(
        select(Letter.status, Letter.failure_code, submitted_expr, func.count())
        .join(BatchItem, BatchItem.letter_id == Letter.id)
        .where(BatchItem.batch_id == batch_id)
        .group_by(Letter.status, Letter.failure_code, submitted_expr)
    )
    for status, failure_code, submitted, number in rows:
        counts["rendered"] += number
        if submitted:
            counts["submitted"] += number
        counts[CANCELLED if failure_code == CANCELLED else status] += number
    return dict(counts)


def is_final(counts: dict[str, int], total: int) -> bool:
    done = sum(counts[s] for s in (*(s.value for s in FINAL_STATUSES if s != LetterStatus.FAILED), "failed",
                                   CANCELLED))
    return done >= total


def batch_to_dict(session: Session, batch: Batch, services: Services,
                  counts: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    """The batch as the API and its events show it (``extra``: a cancel's ``cancelled_now``)."""
    counts = counts or batch_counts(session, batch.id)
    documents = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch.id)
                                     .order_by(BatchDocument.position)))
    total = batch.total or 0
    final = total - counts["pending"] - sum(counts[s] for s in ("queued", "deposited"))

    def share(n: int) -> float:
        return round(n / total, 4) if total else 1.0

    base = f"{services.settings.public_url}/v1/batches/{batch.id}"
    return batch_shapes.Batch.dump(
        id=batch.id,
        object="batch",
        status=batch.status,
        total=total,
        counts=counts,
        progress={"rendered": share(counts["rendered"]), "submitted": share(counts["submitted"]),
                  "final": share(final)},
        template=({"name": batch.template_name, "version": batch.template_version}
                  if batch.template_name else None),
        documents=[{"id": d.id, "role": d.role, "filename": d.filename, "size": d.size, "sha256": d.sha256}
                   for d in documents],
        reference=batch.reference,
        metadata=batch.metadata_ or {},
        created_at=iso(batch.created_at),
        cancel_requested_at=iso(batch.cancel_requested_at),
        completed_at=iso(batch.completed_at),
        links={"self": base, "letters": f"{base}/letters", "report": f"{base}/report",
               "evidence": f"{base}/evidence"},
        **extra,
    )


def item_to_dict(item: BatchItem, letter: Letter | None, public_url: str) -> dict[str, Any]:
    """One row of the batch and where its letter stands."""
    if letter is not None:
        status = CANCELLED if letter.failure_code == CANCELLED else letter.status
    else:
        status = item.status
    failure = None
    if letter is not None and letter.status == LetterStatus.FAILED and status != CANCELLED:
        failure = {"code": letter.failure_code, "message": letter.failure_reason}
    elif item.status == "failed":
        failure = {"code": item.failure_code, "message": item.failure_reason}
    return batch_shapes.BatchLetter.dump(
        row=item.row_number,
        object="batch_letter",
        status=status,
        recipient={"type": item.recipient_type, "email": item.recipient_email,
                   "first_name": item.recipient_first_name, "last_name": item.recipient_last_name,
                   "company": item.recipient_company},
        reference=item.reference,
        letter_id=item.letter_id,
        provider_letter_id=letter.provider_letter_id if letter is not None else None,
        failure=failure,
        deposited_at=iso(letter.deposited_at) if letter is not None else None,
        completed_at=iso(letter.completed_at) if letter is not None else None,
        letter_url=f"{public_url}/v1/letters/{item.letter_id}" if item.letter_id else None,
    )


def cancel_batch(services: Services, session: Session, batch: Batch) -> int:
    """Stop every letter of the batch not yet submitted; returns how many were stopped.

    A row without a letter is marked cancelled (its job then does nothing). A queued letter whose
    submission has not started (``submit_attempted_at`` empty, checked under the row lock the
    submit job also takes) ends as ``failed`` with the code ``cancelled``; one already on its way
    to the provider is left alone: it may have been sent.
    """
    now = services.clock()
    stopped = session.execute(
        update(BatchItem).where(BatchItem.batch_id == batch.id, BatchItem.status == "pending")
        .values(status=CANCELLED, failure_code=CANCELLED, failure_reason="Cancelled before its letter was made.",
                updated_at=now)
    ).rowcount or 0
    letter_ids = list(session.scalars(
        select(BatchItem.letter_id).join(Letter, Letter.id == BatchItem.letter_id)
        .where(BatchItem.batch_id == batch.id, Letter.status == LetterStatus.QUEUED,
               Letter.submit_attempted_at.is_(None))
    ))
    for letter_id in letter_ids:
        letter = session.get(Letter, letter_id, with_for_update=True)
        if letter is None or letter.status != LetterStatus.QUEUED or letter.submit_attempted_at is not None:
            continue
        record_event(session, letter, LetterStatus.FAILED, occurred_at=now, provider=letter.provider,
                     provider_event_id=None, raw={"code": CANCELLED},
                     failure=(CANCELLED, f"Cancelled with its batch {batch.id} before it was submitted."),
                     public_url=services.settings.public_url)
        stopped += 1
    batch.cancel_requested_at = batch.cancel_requested_at or now
    batch.updated_at = now
    return int(stopped)


def complete_if_done(services: Services, session: Session, batch: Batch) -> bool:
    """Mark the batch completed and emit ``batch.completed``, once, when every row is final."""
    if batch.completed_at is not None:
        return True
    counts = batch_counts(session, batch.id)
    if not is_final(counts, batch.total):
        return False
    now = services.clock()
    # Conditional: two workers watching the same batch emit one event between them.
    claimed = session.execute(
        update(Batch).where(Batch.id == batch.id, Batch.completed_at.is_(None))
        .values(status="completed", completed_at=now, updated_at=now)
    ).rowcount
    if claimed != 1:
        return True
    session.refresh(batch)
    record_account_event(session, batch.account_id, "batch.completed",
                         batch_to_dict(session, batch, services, counts), now)
    return True
