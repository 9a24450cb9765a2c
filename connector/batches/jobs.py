"""The workers' side of a batch: make each row's letter exactly once, and watch for the end.

``batch_letter`` renders its rows outside any transaction (a render takes tens of milliseconds;
SQLite would be locked all that time), then, under the items' row locks, creates in one
transaction the letters of the items that still have none. A worker killed before that commit
leaves nothing behind and the job runs again; one killed after it finds ``letter_id`` set and stops.
Each letter's own ``submit_letter`` job, written in the same transaction, then sends it exactly
once (``connector.letters.lifecycle``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connector.batches.models import Batch, BatchDocument, BatchItem
from connector.batches.service import BATCH_LETTER_JOB, BATCH_WATCH_JOB, complete_if_done, spec_for
from connector.delivery import outbox
from connector.errors import BridgeError, Unavailable
from connector.letters.documents import IncomingDocument
from connector.letters.requests import LetterIn
from connector.letters.service import account_context, create_letter
from connector.lib.failpoints import failpoint
from connector.models import Job, Letter
from connector.rendering import TemplateDataError, TemplateSourceError, render_spec
from connector.services import Services

log = logging.getLogger(__name__)
WATCH_DELAY_SECONDS = 30.0
RETRY_LOCKED_SECONDS = 1.0


def _letter_in(batch: Batch, item: BatchItem, data: dict[str, Any] | None) -> LetterIn:
    metadata = {**(item.metadata_ or {}), "batch_id": batch.id, "batch_row": item.row_number}
    recipient = {"type": item.recipient_type, "email": item.recipient_email, "first_name": item.recipient_first_name,
                 "last_name": item.recipient_last_name, "company": item.recipient_company}
    if item.legal_basis:
        recipient["legal_basis"] = item.legal_basis
    return LetterIn.model_validate({
        "recipient": recipient,
        "message": item.message, "reference": item.reference, "metadata": metadata,
        "sandbox_outcome": item.sandbox_outcome,
    }).model_copy(update={"template": batch.template_name, "data": data})


def _fail_item(services: Services, item_id: str, code: str, message: str) -> None:
    with services.db.transaction() as session:
        item = session.get(BatchItem, item_id, with_for_update=True)
        if item is None or item.status != "pending":
            return
        item.status, item.failure_code, item.failure_reason = "failed", code, message
        item.updated_at = services.clock()


def _job_died(services: Services, job: Job, reason: str) -> None:
    for item_id in job.payload.get("item_ids", []):
        _fail_item(services, str(item_id), "letter_not_made", f"The letter could not be made: {reason}")


# In the worker's render pool: a render takes a core, so a process renders one row at a time
# (``lre-bridge worker --concurrency N`` renders N at once) and keeps one warm render worker.
@outbox.job_handler(BATCH_LETTER_JOB, on_dead=_job_died, pool="render")
def make_batch_letters(services: Services, job: Job) -> None:
    """Make the letters of a few rows: rendered first, then stored in one transaction."""
    made_all = make_letters(services, [str(item_id) for item_id in job.payload["item_ids"]])
    if not made_all:
        # A row was locked by another transaction (a cancel, or an earlier run of this job whose
        # lease expired): look again soon; the rerun makes only what is still missing.
        raise outbox.Reschedule(RETRY_LOCKED_SECONDS)


def make_letters(services: Services, item_ids: list[str]) -> bool:
    """Render the rows' letters and store them, with their submit jobs, unless they exist already.

    One read for the batch, its template and its common documents; the renders outside any
    transaction; then one transaction that locks the rows (skipping any another transaction holds,
    so that it never waits on a cancel holding them in another order) and creates one letter per
    row still pending and without one. A worker killed before that commit leaves nothing behind and
    the job runs again; killed after it, the rerun finds every ``letter_id`` set. Returns False when
    a row was skipped because it was locked (the caller runs the job again later).
    """
    with services.db.read() as session:
        items = [item for item in session.scalars(select(BatchItem).where(BatchItem.id.in_(item_ids))
                                                  .order_by(BatchItem.row_number))
                 if item.status == "pending" and item.letter_id is None]
        if not items:
            return True
        batch = session.get(Batch, items[0].batch_id)
        assert batch is not None
        spec = spec_for(session, batch) if batch.template_name else None
        common = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch.id)
                                      .order_by(BatchDocument.position)))
        session.expunge_all()
    # Read once for all the rows: the same objects (and their hashes) go with every letter.
    attachments = [IncomingDocument(d.filename, services.blobs.get(d.storage_key)) for d in common]
    letters: list[tuple[BatchItem, LetterIn, list[IncomingDocument]]] = []
    refused: dict[str, tuple[str, str]] = {}
    for item in items:
        documents = list(attachments)
        data = None
        if spec is not None:
            data = {**(batch.common_data or {}), **(item.data or {})}
            try:
                rendered = render_spec(spec, data, services.clock())
            except (TemplateDataError, TemplateSourceError) as exc:
                # Validated when accepted; reaching here means the template itself fails: no retry helps.
                refused[item.id] = ("render_failed", str(exc))
                continue
            documents.insert(0, IncomingDocument(rendered.filename, rendered.pdf))
        letters.append((item, _letter_in(batch, item, data), documents))
    template = (spec.name, spec.version) if spec is not None else None
    with services.db.transaction() as session:
        locked = {item.id: item for item in session.scalars(
            select(BatchItem).where(BatchItem.id.in_([item.id for item in items])).order_by(BatchItem.id)
            .with_for_update(skip_locked=True))}
        now = services.clock()
        for item_id, (code, message) in refused.items():
            _fail(locked.get(item_id), code, message, now)
        account = account_context(services, session, batch.account_id) if letters else None
        # Held until the commit: the session keeps flushed objects only weakly, and the KPI rollups
        # read a letter from its object when it is still there (else from the database).
        made: list[Letter] = []
        for item, payload, documents in letters:
            row = locked.get(item.id)
            if row is None or row.status != "pending" or row.letter_id is not None:
                continue  # locked elsewhere, made by an earlier run, or cancelled meanwhile
            try:
                letter, _ = create_letter(services, session, batch.account_id, payload, documents, template,
                                          account=account)
            except BridgeError as exc:
                if isinstance(exc, Unavailable):
                    raise outbox.RetryableError(f"{exc.code}: {exc.message}") from exc
                # e.g. the consent was revoked since; create_letter refuses before writing anything.
                _fail(row, exc.code, exc.message, now)
                continue
            row.letter_id, row.status, row.updated_at = letter.id, "created", now
            made.append(letter)
        failpoint("batch.before_commit")
    failpoint("batch.after_commit")
    return len(locked) == len(items)


def _fail(item: BatchItem | None, code: str, message: str, now: datetime) -> None:
    if item is None or item.status != "pending" or item.letter_id is not None:
        return
    item.status, item.failure_code, item.failure_reason, item.updated_at = "failed", code, message, now


@outbox.job_handler(BATCH_WATCH_JOB)
def watch_batch(services: Services, job: Job) -> None:
    """Emit ``batch.completed`` once every row is final; until then, look again later."""
    with services.db.transaction() as session:
        batch = session.get(Batch, str(job.payload["batch_id"]))
        if batch is None or complete_if_done(services, session, batch):
            return
    # The sandbox moves in seconds; a real letter takes days (up to the 15-day claim window).
    step = services.settings.sandbox_step_seconds
    raise outbox.Reschedule(min(step, WATCH_DELAY_SECONDS) if step >= 0 else WATCH_DELAY_SECONDS)
