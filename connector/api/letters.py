"""Letters and their event feed: ``/v1/letters``, ``/v1/events``."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, Field
from sqlalchemy import Select, or_, select
from werkzeug.datastructures import FileStorage

from connector import shapes
from connector.api import examples, forms
from connector.api.auth import require_api_key
from connector.api.bodies import letter_json
from connector.api.common import (
    check_json_value,
    content_disposition,
    int_arg,
    iso_datetime_arg,
    limit_arg,
    list_answer,
    page,
    services,
    strict_json_loads,
)
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.evidence import access_logging
from connector.api.files import blob_response
from connector.api.idempotency import idempotent
from connector.api.params import Instant, PageQuery, choice
from connector.api.registry import Body, ListOf, documented, file_answer, json_answer
from connector.evidence.access import reader_name
from connector.letters.documents import IncomingDocument, check_pdf
from connector.letters.requests import LetterIn, parse_letter
from connector.letters.service import accept_letter, event_to_dict, letter_to_dict
from connector.letters.vocabulary import LetterStatus
from connector.lib.spool import MEMORY_BYTES, SpooledBase64
from connector.models import Document, Event, Letter, Proof

bp = Blueprint("letters", __name__)

LETTER_STATUSES = tuple(LetterStatus)
MAX_DOCUMENT_POSITION = 1000




StatusChoice = choice(status.value for status in LetterStatus)


class LetterListQuery(PageQuery):
    status: StatusChoice = None
    reference: str | None = None
    recipient: str | None = Field(None, description="part of the recipient's e-mail, last name or company")
    from_: Instant = Field(None, alias="from")
    to: Instant = None


class DocumentQuery(BaseModel):
    position: int = Field(0, ge=0, le=MAX_DOCUMENT_POSITION)


class EventListQuery(PageQuery):
    type: str | None = Field(None, description="one or more event types, comma-separated (letter.accepted,…)")
    letter_id: str | None = None


def _multipart_payload() -> tuple[dict[str, Any], list[IncomingDocument]]:
    """A multipart request: JSON fields as form values (``recipient`` may be JSON or flat
    ``recipient.email`` fields) and the PDFs as files."""
    payload: dict[str, Any] = {}
    recipient: dict[str, Any] = {}
    for key, value in request.form.items():
        if not key:
            raise ApiError(422, "invalid_multipart", "Every multipart part needs a name (Content-Disposition: "
                                                     "form-data; name=\"...\").")
        if key.startswith("recipient."):
            recipient[key.removeprefix("recipient.")] = value
        elif key in ("recipient", "metadata", "data"):
            try:
                payload[key] = strict_json_loads(value, (key,))
            except ValueError:
                raise ApiError(422, "invalid_json", f"{key} must be a JSON object.", key) from None
        else:
            payload[key] = value
    if recipient:
        if "recipient" in payload:
            raise ApiError(422, "invalid_multipart", "Send the recipient either as one JSON part \"recipient\" or "
                                                     "as recipient.* fields, not both.", "recipient")
        payload["recipient"] = recipient
    check_json_value(payload)  # NUL characters in form values, named
    files: list[IncomingDocument] = []
    for index, storage in enumerate(request.files.getlist("documents") + request.files.getlist("file")):
        document = uploaded_document(storage, storage.filename or f"document-{index + 1}.pdf")
        check_pdf(document, f"documents.{index}", services().settings.max_document_bytes)
        check_json_value(storage.filename or "", (f"documents.{index}", "filename"))
        files.append(document)
    return payload, files


def uploaded_document(storage: FileStorage, filename: str) -> IncomingDocument:
    """A multipart file as a document: its bytes when small, else the temporary file werkzeug
    spooled it to (``BridgeRequest``), read in pieces and never whole."""
    stream = storage.stream
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size <= MEMORY_BYTES:
        return IncomingDocument(filename, stream.read())
    return IncomingDocument(filename, stream)  # type: ignore[arg-type]  # hashed here, in pieces


@bp.post("/v1/letters")
@documented(
    "Send a registered letter", operation_id="sendLetter",
    description="JSON (documents as {filename, content_base64} or {filename, url}, or a template with its data) or "
                "multipart/form-data with PDF files in `documents`.",
    body=Body({"application/json": LetterIn, "multipart/form-data": forms.MultipartLetter}, example=examples.LETTER),
    answers={201: json_answer(shapes.Letter, "The letter is accepted and queued")}, errors={409: None, 413: None})
@require_api_key
@idempotent
def send_letter() -> tuple[Response, int, dict[str, str]]:
    """Accept a letter (JSON or multipart), store it and queue its submission."""
    uploaded: list[IncomingDocument] = []
    spooled: dict[str, SpooledBase64] = {}
    if request.mimetype == "multipart/form-data":
        raw, uploaded = _multipart_payload()
        payload = parse_letter(raw)
    else:
        # Read in pieces: long content_base64 strings are decoded to files as the body is read.
        body, spooled = letter_json()
        if body is None:
            raise ApiError(400, "invalid_json", "Send the letter as JSON (Content-Type: application/json) or "
                                                "as multipart/form-data with PDF files.")
        payload = parse_letter(body)
    svc = services()
    session = db_session()
    _, body = accept_letter(svc, session, g.account.id, payload, uploaded, spooled)
    return jsonify(body), 201, {"Location": body["links"]["self"]}


def _get_letter(letter_id: str) -> Letter:
    letter = db_session().scalar(select(Letter).where(Letter.id == letter_id, Letter.account_id == g.account.id))
    if letter is None:
        raise ApiError(404, "letter_not_found", "No letter with this id in your account.", "id")
    return letter


@bp.get("/v1/letters/<letter_id>")
@documented("Find a letter", operation_id="getLetter", answers={200: shapes.Letter})
@require_api_key
def get_letter(letter_id: str) -> Response:
    return jsonify(letter_to_dict(db_session(), _get_letter(letter_id), services().settings.public_url))


@bp.get("/v1/letters")
@documented("List letters, newest first", operation_id="listLetters", query=LetterListQuery,
            answers={200: ListOf(shapes.Letter)})
@require_api_key
def list_letters() -> Response:
    """Newest first, with filters; ``next_cursor`` continues the list."""
    query: Select[tuple[Letter]] = select(Letter).where(Letter.account_id == g.account.id)
    status = request.args.get("status")
    if status:
        if status not in LETTER_STATUSES:
            raise ApiError(400, "invalid_status", f"status must be one of: {', '.join(LETTER_STATUSES)}.", "status")
        query = query.where(Letter.status == status)
    if request.args.get("reference"):
        query = query.where(Letter.reference == request.args["reference"])
    recipient = request.args.get("recipient")
    if recipient:
        like = f"%{recipient.lower()}%"
        query = query.where(or_(Letter.recipient_email.like(like), Letter.recipient_last_name.ilike(like),
                                Letter.recipient_company.ilike(like)))
    created_from = iso_datetime_arg("from")
    created_to = iso_datetime_arg("to")
    if created_from:
        query = query.where(Letter.created_at >= created_from)
    if created_to:
        query = query.where(Letter.created_at <= created_to)
    rows, next_cursor = page(query, Letter.created_at, Letter.id, limit_arg())
    session = db_session()
    public_url = services().settings.public_url
    # Two queries for the whole page rather than two per letter.
    ids = [r.id for r in rows]
    documents: dict[str, list[Document]] = defaultdict(list)
    for doc in session.scalars(select(Document).where(Document.letter_id.in_(ids)).order_by(Document.position)):
        documents[doc.letter_id].append(doc)
    proofs: dict[str, list[Proof]] = defaultdict(list)
    for proof in session.scalars(select(Proof).where(Proof.letter_id.in_(ids)).order_by(Proof.created_at)):
        proofs[proof.letter_id].append(proof)
    data = [letter_to_dict(session, r, public_url, documents=documents[r.id], proofs=proofs[r.id]) for r in rows]
    return list_answer(data, next_cursor)


@bp.get("/v1/letters/<letter_id>/document")
@documented("The PDF as sent", operation_id="getLetterDocument", query=DocumentQuery,
            answers={200: file_answer("PDF", "application/pdf")})
@require_api_key
def get_document(letter_id: str) -> Response:
    """The main PDF as sent (``?position=`` for the others)."""
    letter = _get_letter(letter_id)
    position = int_arg("position", 0, 0, MAX_DOCUMENT_POSITION)
    session = db_session()
    doc = session.scalar(select(Document).where(Document.letter_id == letter.id, Document.position == position))
    if doc is None:
        raise ApiError(404, "document_not_found", "This letter has no document at that position.", "position")
    return blob_response(
        services().blobs, doc.storage_key, doc.size, mimetype="application/pdf",
        headers={"Content-Disposition": content_disposition(doc.filename),
                 "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(doc.sha256)).decode()},
        # Logged once the answer is good: the access log is evidence, and records only real reads.
        **access_logging(session, letter.id, f"document:{position}", reader_name(g.api_key.id, g.api_key.name)),
    )


@bp.get("/v1/events")
@documented("The event feed, newest first (polling triggers)", operation_id="listEvents",
            query=EventListQuery, answers={200: ListOf(shapes.Event)})
@require_api_key
def list_events() -> Response:
    """The event feed, newest first: what a polling trigger reads."""
    query: Select[tuple[Event]] = select(Event).where(Event.account_id == g.account.id)
    event_type = request.args.get("type")
    if event_type:
        types = [t.strip() for t in event_type.split(",") if t.strip()]
        query = query.where(Event.type.in_(types))
    if request.args.get("letter_id"):
        query = query.where(Event.letter_id == request.args["letter_id"])
    rows, next_cursor = page(query, Event.seq, None, limit_arg())
    return list_answer([event_to_dict(e) for e in rows], next_cursor)


@bp.get("/v1/events/<event_id>")
@documented("One event", operation_id="getEvent", answers={200: shapes.Event})
@require_api_key
def get_event(event_id: str) -> Response:
    event = db_session().scalar(select(Event).where(Event.id == event_id, Event.account_id == g.account.id))
    if event is None:
        raise ApiError(404, "event_not_found", "No event with this id in your account.", "id")
    return jsonify(event_to_dict(event))

