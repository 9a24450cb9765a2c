"""The workers' side of a batch: make each row's letter exactly once, and watch for the end.

``batch_letter`` renders outside any transaction (a render takes tens of milliseconds; SQLite
would be locked all that time), then, under the item's row lock, creates the letter only if the
item still has none. A worker killed before that commit leaves nothing behind and the job runs
again; one killed after it finds ``letter_id`` set and stops. The letter's own ``submit_letter``
job, written in the same transaction, then sends it exactly once (``connector.letters.lifecycle``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from connector.batches.models import Batch, BatchDocument, BatchItem
from connector.batches.service import BATCH_LETTER_JOB, BATCH_WATCH_JOB, complete_if_done, spec_for
from connector.delivery import outbox
from connector.errors import BridgeError, Unavailable
from connector.letters.documents import IncomingDocument
from connector.letters.requests import LetterIn
from connector.letters.service import create_letter
from connector.lib.failpoints import failpoint
from connector.models import Job
from connector.rendering import TemplateDataError, TemplateSourceError, render_spec
from connector.services import Services

log = logging.getLogger(__name__)
WATCH_DELAY_SECONDS = 30.0


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


@outbox.job_handler(BATCH_LETTER_JOB, on_dead=_job_died)
def make_batch_letters(services: Services, job: Job) -> None:
    """Make the letters of a few rows, one transaction each (a rerun skips those already made)."""
    for item_id in job.payload["item_ids"]:
        make_batch_letter(services, str(item_id))


def make_batch_letter(services: Services, item_id: str) -> None:
    """Render one row's letter and store it (with its submit job), unless it already exists."""
    with services.db.transaction() as session:
        item = session.get(BatchItem, item_id)
        if item is None or item.status != "pending" or item.letter_id is not None:
            return
        batch = session.get(Batch, item.batch_id)
        assert batch is not None
        spec = spec_for(session, batch) if batch.template_name else None
        common = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch.id)
                                      .order_by(BatchDocument.position)))
        session.expunge_all()
    documents = [IncomingDocument(d.filename, services.blobs.get(d.storage_key)) for d in common]
    data = None
    if spec is not None:
        data = {**(batch.common_data or {}), **(item.data or {})}
        try:
            rendered = render_spec(spec, data, services.clock())
        except (TemplateDataError, TemplateSourceError) as exc:
            # Validated when accepted; reaching here means the template itself fails: no retry helps.
            _fail_item(services, item_id, "render_failed", str(exc))
            return
        documents.insert(0, IncomingDocument(rendered.filename, rendered.pdf))
    payload = _letter_in(batch, item, data)
    with services.db.transaction() as session:
        locked = session.get(BatchItem, item_id, with_for_update=True)
        if locked is None or locked.status != "pending" or locked.letter_id is not None:
            return  # made by an earlier run, or cancelled meanwhile
        try:
            letter, _ = create_letter(services, session, batch.account_id, payload, documents,
                                      (spec.name, spec.version) if spec is not None else None)
        except BridgeError as exc:
            if isinstance(exc, Unavailable):
                raise outbox.RetryableError(f"{exc.code}: {exc.message}") from exc
            session.rollback()
            _fail_item(services, item_id, exc.code, exc.message)  # e.g. the consent was revoked since
            return
        locked.letter_id = letter.id
        locked.status = "created"
        locked.updated_at = services.clock()
        failpoint("batch.before_commit")
    failpoint("batch.after_commit")


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
