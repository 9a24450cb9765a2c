"""Creating a batch: ``POST /v1/batches`` reads the rows (JSON, a CSV upload or a CSV body), checks
every one, and stores the batch and one queued letter per row, or nothing (``connector.batches``)."""

from __future__ import annotations

import json
from typing import IO, Annotated, Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from connector.api import examples, forms
from connector.api.auth import require_api_key
from connector.api.bodies import batch_json, request_body
from connector.api.common import services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.idempotency import idempotent
from connector.api.letters import uploaded_document
from connector.api.registry import Body, documented, json_answer
from connector.batches import csvfile
from connector.batches import rows as batch_rows
from connector.batches import shapes as batch_shapes
from connector.batches.service import CommonDocument, batch_to_dict, store_batch
from connector.errors import BridgeError
from connector.letters.documents import IncomingDocument, check_pdf, load_documents
from connector.letters.requests import SANDBOX_OUTCOMES, DocumentIn, MetadataValue, validate_object
from connector.lib.spool import SpooledBase64
from connector.rendering import TemplateNotFound, TemplateSpec, as_bridge_error
from connector.rendering.library import resolve_template

bp = Blueprint("batch_intake", __name__)


class BatchIn(BaseModel):
    """The body of ``POST /v1/batches`` (JSON; a CSV upload sends the same fields as form values)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    template: str | None = Field(default=None, max_length=100, description="A template's name; or give document.")
    document: DocumentIn | None = Field(default=None, description="One PDF sent to every recipient.")
    data: dict[str, Any] = Field(default_factory=dict, description="Template data common to every row.")
    attachments: list[DocumentIn] = Field(default_factory=list, max_length=19,
                                          description="PDFs joined to every letter (stored once).")
    rows: list[Any] | None = Field(default=None, description="One object per recipient: column → value, or "
                                   "{recipient, data, reference, metadata, sandbox_outcome}.")
    mapping: dict[str, str | None] = Field(default_factory=dict, max_length=200,
                                           description="column → recipient.<field>, data.<field>, metadata.<key>, "
                                           "reference, message, sandbox_outcome, or null to ignore it.")
    recipient_type: str | None = Field(default=None, description="The type of rows that give none "
                                       "(professional, individual, administration, association).")
    legal_basis: str | None = Field(default=None, description="The legal basis of rows that give none "
                                    "(professional, consent, condominium; see POST /v1/letters).")
    message: str | None = Field(default=None, max_length=5000)
    reference: str | None = Field(default=None, max_length=200)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=40)
    sandbox_outcome: str | None = Field(default=None, description="Sandbox only: every letter's outcome.")
    allow_short_notice: Annotated[bool, Strict()] = Field(
        default=False, description="An urgent assembly: skip the 21-day notice check.")

    @field_validator("sandbox_outcome")
    @classmethod
    def _known_outcome(cls, value: str | None) -> str | None:
        if value is not None and value not in SANDBOX_OUTCOMES:
            raise ValueError(f"sandbox_outcome must be one of: {', '.join(SANDBOX_OUTCOMES)}")
        return value


_FORM_JSON = ("data", "mapping", "metadata", "rows", "attachments", "document")


def _multipart() -> tuple[BatchIn, IO[bytes] | None, IncomingDocument | None, list[IncomingDocument]]:
    """A CSV upload: ``rows`` as a file, the other fields as form values, the PDFs as files."""
    raw: dict[str, Any] = {}
    for key, value in request.form.items():
        if key in _FORM_JSON:
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError:
                raise ApiError(422, "invalid_json", f"{key} must be JSON.", key) from None
        elif key == "allow_short_notice":
            raw[key] = value.strip().lower() in ("1", "true", "yes", "oui")
        elif key not in ("encoding", "delimiter"):
            raw[key] = value
    body = validate_object(BatchIn, raw)
    upload = request.files.get("rows")
    # Uploads stay in the files werkzeug spooled them to: the CSV is parsed from its file, the PDFs
    # are checked and archived from theirs (bytes only when small).
    csv_file = upload.stream if upload is not None else None
    max_bytes = services().settings.max_document_bytes
    document = None
    if "document" in request.files:
        storage = request.files["document"]
        document = uploaded_document(storage, storage.filename or "lettre.pdf")
        check_pdf(document, "document", max_bytes)
    attachments = []
    for index, storage in enumerate(request.files.getlist("attachments")):
        attachment = uploaded_document(storage, storage.filename or f"piece-jointe-{index + 1}.pdf")
        check_pdf(attachment, f"attachments.{index}", max_bytes)
        attachments.append(attachment)
    return body, csv_file, document, attachments


def _load(docs: list[DocumentIn], field: str, spooled: dict[str, SpooledBase64]) -> list[IncomingDocument]:
    try:
        return load_documents(services(), docs, spooled)
    except BridgeError as exc:
        # load_documents names "documents.<n>"; here the same list is called ``field``.
        if exc.field and exc.field.startswith("documents"):
            exc.field = field + exc.field.removeprefix("documents")
        raise


def _rows(body: BatchIn, csv_bytes: IO[bytes] | None) -> list[Any]:
    if csv_bytes is not None and body.rows is not None:
        raise ApiError(422, "invalid_request", "Give the rows once: as a CSV file or as a JSON array.", "rows")
    if csv_bytes is None:
        if body.rows is None:
            raise ApiError(422, "invalid_request", "Give the rows: a JSON array, or a CSV file in the field rows.",
                           "rows")
        return body.rows
    try:
        return csvfile.parse_csv(csv_bytes, encoding=request.form.get("encoding") or None,
                                    delimiter=request.form.get("delimiter") or None)
    except csvfile.RowsError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None


def _legal_basis(account_id: str) -> Any:
    """The consent gate letters go through, asked row by row before anything is stored."""
    from connector.consent import gate

    session, now = db_session(), services().clock()

    def check(email: str, needs_consent: bool, basis: str | None) -> tuple[str, str] | None:
        try:
            decision = gate.decide(session, account_id, email, needs_consent=needs_consent, basis=basis,
                                   hold_until_consent=False, now=now)
        except BridgeError as exc:
            return exc.code, exc.message
        return None if decision is not None else ("consent_required", f"{email} has no legal basis.")

    return check


def _resolve(body: BatchIn, document: IncomingDocument | None) -> TemplateSpec | None:
    if (body.template is None) == (document is None):
        raise ApiError(422, "invalid_request", "Give either a template (with its data) or one document for all.",
                       "template")
    if body.template is None:
        if body.data:
            raise ApiError(422, "invalid_request", "data is only used with a template.", "data")
        return None
    try:
        return resolve_template(db_session(), g.account.id, body.template)
    except TemplateNotFound as exc:
        raise as_bridge_error(exc) from None


@bp.post("/v1/batches")
@documented(
    "Send one template (or one PDF) to many recipients", operation_id="createBatch", tags=("Batches",),
    description="Every row is checked before anything is stored: one 422 `invalid_rows` lists each bad row "
                "(row, column, field, code, message; at most 100). Accepted batches answer 202 at once; the "
                "workers render and send each letter exactly once. Rows: a JSON array, or a CSV file in the "
                "multipart field `rows` (UTF-8 or Windows-1252, `;` or `,`), or a `text/csv` body.",
    body=Body({"application/json": BatchIn, "multipart/form-data": forms.MultipartBatch,
               "text/csv": {"type": "string"}}, example=examples.BATCH),
    answers={202: json_answer(batch_shapes.Batch, "Accepted; the letters are being made")})
@require_api_key
@idempotent
def create_batch() -> tuple[Response, int, dict[str, str]]:
    """Validate every row, then store the batch and queue one letter per row (202)."""
    svc = services()
    if request.mimetype == "multipart/form-data":
        body, csv_bytes, document, attachments = _multipart()
    elif request.mimetype == "text/csv":
        # A bare CSV body: the other fields come as query arguments.
        allowed = ("template", "reference", "message", "sandbox_outcome")
        body = validate_object(BatchIn, {k: v for k, v in request.args.items() if k in allowed})
        csv_bytes, document, attachments = request_body(), None, []  # spooled when large, parsed as read
    else:
        # Read in pieces: long content_base64 strings (document, attachments) decoded to files as read.
        raw, spooled = batch_json()
        if raw is None:
            raise ApiError(400, "invalid_json", "Send the batch as JSON, or as multipart/form-data with the CSV in "
                                                "the field rows.")
        body, csv_bytes = validate_object(BatchIn, raw), None
        document = _load([body.document], "document", spooled)[0] if body.document else None
        attachments = _load(body.attachments, "attachments", spooled)
    spec = _resolve(body, document)
    if len(attachments) + 1 > svc.settings.max_documents:
        raise ApiError(422, "too_many_documents",
                       f"At most {svc.settings.max_documents - 1} attachments (each letter holds "
                       f"{svc.settings.max_documents} documents).", "attachments")
    raw_rows = _rows(body, csv_bytes)
    common = {"message": body.message, "reference": body.reference, "metadata": body.metadata,
              "sandbox_outcome": body.sandbox_outcome, "recipient_type": body.recipient_type,
              "legal_basis": body.legal_basis}
    ctx = batch_rows.BatchContext(
        fields=spec.fields if spec else None, common_data=body.data, common=common,
        legal_basis=_legal_basis(g.account.id), template_name=spec.name if spec else None,
        today=_paris_today(svc.clock()), allow_short_notice=body.allow_short_notice, mapping=body.mapping)
    valid, errors, total_errors = batch_rows.validate_rows(raw_rows, ctx)
    if errors:
        first = errors[0]
        shown = f" (the first {len(errors)} are listed)" if total_errors > len(errors) else ""
        where = f"row {first.row}" if first.row else "the header"
        raise ApiError(422, "invalid_rows",
                       f"{total_errors} problem(s) in the rows{shown}; nothing was stored. First, {where}"
                       f"{', column ' + repr(first.column) if first.column else ''}: {first.message}",
                       "rows", details=[e.as_dict() for e in errors])
    documents = ([CommonDocument("letter", document)] if document else []) + [
        CommonDocument("attachment", a) for a in attachments]
    session = db_session()
    batch = store_batch(svc, session, g.account.id, spec=spec, common_data=body.data, common=common,
                        documents=documents, rows=valid)
    answer = batch_to_dict(session, batch, svc)
    return jsonify(answer), 202, {"Location": answer["links"]["self"]}


def _paris_today(now: Any) -> Any:
    from connector.rendering.fields import LETTER_TIMEZONE

    return now.astimezone(LETTER_TIMEZONE).date()
