"""Batches: ``/v1/batches`` — one template (or one PDF) to many recipients, proven in one bordereau.

Reading a batch, its rows, its bordereau and its evidence, and cancelling it; creating one is
``connector.api.batch_intake``.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from pydantic import BaseModel
from sqlalchemy import select

from connector.api.auth import require_api_key
from connector.api.common import limit_arg, list_answer, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.params import PageQuery, choice
from connector.api.registry import Answer, ListOf, documented, file_answer, json_answer
from connector.batches import shapes as batch_shapes
from connector.batches.evidence import evidence_zip_chunks
from connector.batches.models import Batch, BatchItem
from connector.batches.report import report_csv, report_pdf, report_rows
from connector.batches.service import batch_to_dict, cancel_batch, item_to_dict
from connector.batches.shapes import CANCELLED, ITEM_FILTERS
from connector.evidence.access import reader_name
from connector.models import Letter

bp = Blueprint("batches", __name__)
_TAGS = ("Batches",)


ItemStatusChoice = choice(ITEM_FILTERS)
FormatChoice = choice(("pdf", "csv"))


class BatchLetterQuery(PageQuery):
    status: ItemStatusChoice = None
    recipient: str | None = None


class ReportQuery(BaseModel):
    format: FormatChoice = None



def _get_batch(batch_id: str) -> Batch:
    batch = db_session().scalar(select(Batch).where(Batch.id == batch_id, Batch.account_id == g.account.id))
    if batch is None:
        raise ApiError(404, "batch_not_found", "No batch with this id in your account.", "id")
    return batch


@bp.get("/v1/batches")
@documented("List batches, newest first", operation_id="listBatches", tags=_TAGS, query=PageQuery,
            answers={200: Answer("A page", {"application/json": ListOf(batch_shapes.Batch)})})
@require_api_key
def list_batches() -> Response:
    """The account's batches, newest first."""
    from connector.api.common import page

    query = select(Batch).where(Batch.account_id == g.account.id)
    rows, next_cursor = page(query, Batch.created_at, Batch.id, limit_arg())
    session, svc = db_session(), services()
    return list_answer([batch_to_dict(session, b, svc) for b in rows], next_cursor)


@bp.get("/v1/batches/<batch_id>")
@documented("A batch with its counts per status and progress", operation_id="getBatch", tags=_TAGS,
            answers={200: json_answer(batch_shapes.Batch, "The batch")})
@require_api_key
def get_batch(batch_id: str) -> Response:
    return jsonify(batch_to_dict(db_session(), _get_batch(batch_id), services()))


def _cursor_row() -> int:
    raw = request.args.get("cursor")
    if not raw:
        return 0
    try:
        return int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API gave you.", "cursor") from None


@bp.get("/v1/batches/<batch_id>/letters")
@documented("The batch's rows and their letters, in row order", operation_id="listBatchLetters", tags=_TAGS,
            query=BatchLetterQuery,
            answers={200: Answer("A page", {"application/json": ListOf(batch_shapes.BatchLetter)})})
@require_api_key
def list_batch_letters(batch_id: str) -> Response:
    """The batch's rows in row order, each with its letter's status; ``status`` and ``recipient`` filter."""
    batch = _get_batch(batch_id)
    query = (select(BatchItem, Letter).outerjoin(Letter, Letter.id == BatchItem.letter_id)
             .where(BatchItem.batch_id == batch.id, BatchItem.row_number > _cursor_row()))
    status = request.args.get("status")
    if status:
        if status not in ITEM_FILTERS and status != "failed":
            raise ApiError(400, "invalid_status", f"status must be one of: {', '.join(ITEM_FILTERS)}.", "status")
        if status == "pending":
            query = query.where(BatchItem.status == "pending")
        elif status == CANCELLED:
            query = query.where((BatchItem.status == CANCELLED) | (Letter.failure_code == CANCELLED))
        elif status == "failed":
            query = query.where((BatchItem.status == "failed") | ((Letter.status == "failed")
                                                                   & (Letter.failure_code != CANCELLED)))
        else:
            query = query.where(Letter.status == status)
    recipient = request.args.get("recipient")
    if recipient:
        like = f"%{recipient.lower()}%"
        query = query.where(BatchItem.recipient_email.like(like) | BatchItem.recipient_last_name.ilike(like)
                            | BatchItem.recipient_company.ilike(like))
    limit = limit_arg(50)
    found = list(db_session().execute(query.order_by(BatchItem.row_number).limit(limit + 1)))
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        next_cursor = base64.urlsafe_b64encode(str(found[-1][0].row_number).encode()).decode().rstrip("=")
    public_url = services().settings.public_url
    return list_answer([item_to_dict(item, letter, public_url) for item, letter in found], next_cursor)


@bp.post("/v1/batches/<batch_id>/cancel")
@documented("Cancel the letters not yet submitted", operation_id="cancelBatch", tags=_TAGS,
            answers={200: json_answer(batch_shapes.Batch, "The batch after the cancel")})
@require_api_key
def cancel(batch_id: str) -> Response:
    """Stop the letters not yet submitted (those already on their way go on)."""
    session, svc = db_session(), services()
    batch = session.scalar(select(Batch).where(Batch.id == batch_id, Batch.account_id == g.account.id)
                           .with_for_update())
    if batch is None:
        raise ApiError(404, "batch_not_found", "No batch with this id in your account.", "id")
    stopped = cancel_batch(svc, session, batch)
    session.commit()
    return jsonify(batch_to_dict(session, batch, svc, cancelled_now=stopped))


@bp.get("/v1/batches/<batch_id>/report")
@documented("The bordereau (PDF, or CSV with format=csv)", operation_id="getBatchReport", tags=_TAGS,
            query=ReportQuery, answers={200: Answer("The bordereau", {
                "application/pdf": {"type": "string", "format": "binary"}, "text/csv": {"type": "string"}})})
@require_api_key
def report(batch_id: str) -> Response:
    """The bordereau: every recipient, letter, status, date and hash, with the totals (PDF or CSV)."""
    batch = _get_batch(batch_id)
    wanted = request.args.get("format") or ("csv" if "text/csv" in request.headers.get("Accept", "") else "pdf")
    if wanted not in ("pdf", "csv"):
        raise ApiError(400, "invalid_format", "format must be pdf or csv.", "format")
    session, svc = db_session(), services()
    lines = report_rows(session, batch)
    counts = batch_to_dict(session, batch, svc)
    if wanted == "csv":
        return Response(report_csv(lines, counts), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="bordereau-{batch.id}.csv"'})
    return Response(report_pdf(session, batch, lines, counts, svc.clock()), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="bordereau-{batch.id}.pdf"'})


@bp.get("/v1/batches/<batch_id>/evidence")
@documented("Every letter's evidence package and the bordereau (zip, streamed)", operation_id="getBatchEvidence",
            tags=_TAGS, answers={200: file_answer("The zip", "application/zip")})
@require_api_key
def evidence(batch_id: str) -> Response:
    """A zip of every letter's sealed evidence package and the bordereau, streamed as it is made."""
    batch = _get_batch(batch_id)
    reader = reader_name(g.api_key.id, g.api_key.name)
    chunks = evidence_zip_chunks(services(), batch.id, reader)
    return Response(stream_with_context(chunks), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="preuves-{batch.id}.zip"'})
