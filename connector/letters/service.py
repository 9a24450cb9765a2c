"""Letters: validation of what a client sends, creation, the public shape, and status changes.

``record_event`` is the only place a letter's status changes. It writes the event, the proof,
the journal line and the outbound webhook deliveries in the caller's transaction, so that either
all of them exist or none does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import secrets
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import shapes
from connector.archive.jobs import LOCK_RETENTION_JOB
from connector.consent import gate as consent_gate
from connector.delivery import outbox
from connector.delivery.hooks import active_hooks, enqueue_deliveries
from connector.errors import BridgeError, InvalidInput, LetterRejected, MalformedRequest, TooLarge, from_provider
from connector.evidence import journal
from connector.evidence.retention import write_lock_until
from connector.letters.vocabulary import CONSENT_REQUIRED, RecipientType, SandboxOutcome
from connector.lib import http, spool
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


SANDBOX_OUTCOMES = tuple(SandboxOutcome)

# Which statuses may follow which. Anything else (a late or duplicated provider report) is kept
# as raw data by the provider adapter but changes nothing here.
ALLOWED_TRANSITIONS: dict[LetterStatus, frozenset[LetterStatus]] = {
    LetterStatus.QUEUED: frozenset({LetterStatus.DEPOSITED, LetterStatus.FAILED}),
    LetterStatus.DEPOSITED: frozenset(
        {LetterStatus.ACCEPTED, LetterStatus.REFUSED, LetterStatus.NEGLECTED, LetterStatus.BOUNCED}
    ),
}


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: RecipientType
    email: EmailStr
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=300)
    # Why this recipient may receive an LRE (connector.consent.gate); default: professional for a
    # professional, consent for anyone else.
    legal_basis: consent_gate.LegalBasis | None = None

    @model_validator(mode="after")
    def _named(self) -> RecipientIn:
        if self.type == RecipientType.INDIVIDUAL and not (self.first_name and self.last_name):
            raise ValueError("an individual recipient needs first_name and last_name")
        if self.type != RecipientType.INDIVIDUAL and not (self.company or self.last_name):
            raise ValueError("give the recipient's company (or last_name)")
        return self


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_base64: str | None = None
    url: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _one_source(self) -> DocumentIn:
        if (self.content_base64 is None) == (self.url is None):
            raise ValueError("give exactly one of content_base64 or url")
        return self


MetadataValue = str | int | float | bool | None


class LetterIn(BaseModel):
    """The body of ``POST /v1/letters``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    recipient: RecipientIn
    documents: list[DocumentIn] = Field(default_factory=list, max_length=20)
    template: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] | None = None
    message: str | None = Field(default=None, max_length=5000)
    reference: str | None = Field(default=None, max_length=200)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=50)
    sandbox_outcome: SandboxOutcome | None = None
    sender_otp: str | None = Field(default=None, max_length=20)
    # No consent yet but an invitation is pending: keep the letter queued until the answer.
    hold_until_consent: bool = False

    @field_validator("metadata")
    @classmethod
    def _short_metadata(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for key, item in value.items():
            if len(key) > 40 or (isinstance(item, str) and len(item) > 500):
                raise ValueError("metadata keys are at most 40 characters and values at most 500")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> LetterIn:
        if self.data is not None and not self.template:
            raise ValueError("data is only used with a template")
        return self


# pydantic adds the union member it tried to a location ("metadata.k.constrained-str"); users
# need the field, not our type names.
_UNION_TAGS = {"str", "int", "float", "bool", "none", "list", "dict", "constrained-str", "function-after"}


def _loc_to_field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if str(p).split("[")[0] not in _UNION_TAGS]
    return ".".join(parts) or None


def validation_error(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A pydantic error as a 422 naming the first field, with every problem in ``details``."""
    details = []
    for err in exc.errors():
        field = _loc_to_field(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        details.append({"field": (prefix + field) if field else (prefix.rstrip(".") or None), "message": message})
    first = details[0]
    return InvalidInput("invalid_request", first["message"], first["field"], details=details)


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_object(model: type[ModelT], payload: Any) -> ModelT:
    """``payload`` validated by ``model``: 400 when it is not a JSON object, 422 naming the field."""
    if not isinstance(payload, dict):
        raise MalformedRequest("invalid_json", "The request body must be a JSON object.")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc) from None


def parse_letter(payload: Any) -> LetterIn:
    """The body of ``POST /v1/letters`` (or of a signed intake message), validated."""
    return validate_object(LetterIn, payload)


class IncomingDocument:
    """A PDF on its way into the archive: bytes when small, else a seekable temporary file.

    Large documents never exist whole in memory: they are checked, hashed and archived from the
    file (``open``). ``content`` reads the whole file, for the few callers that need bytes.
    """

    def __init__(self, filename: str, content: bytes | IO[bytes], source_url: str | None = None, *,
                 size: int | None = None, sha256: str | None = None) -> None:
        self.filename = filename
        self.source_url = source_url
        if isinstance(content, bytes | bytearray):
            self._bytes: bytes | None = bytes(content)
            self._file: IO[bytes] | None = None
            self.size = len(self._bytes)
            self.sha256 = sha256 or hashlib.sha256(self._bytes).hexdigest()
            return
        self._bytes, self._file = None, content
        if size is None or sha256 is None:
            digest, size = hashlib.sha256(), 0
            for chunk in spool.chunks_of(self.open()):
                digest.update(chunk)
                size += len(chunk)
            sha256 = digest.hexdigest()
        self.size, self.sha256 = size, sha256

    @property
    def in_memory(self) -> bool:
        return self._bytes is not None

    @property
    def content(self) -> bytes:
        """The whole document as bytes (read from the file for a large one)."""
        if self._bytes is not None:
            return self._bytes
        return self.open().read()

    def open(self) -> IO[bytes]:
        """The document from its first byte. For a file-backed document this is the file itself,
        rewound: read it to the end before the next ``open``, and do not close it (``close`` does)."""
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        assert self._file is not None
        self._file.seek(0)
        return self._file

    def reader(self) -> IO[bytes]:
        """An independent reader over the document from its first byte (close it when done)."""
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        assert self._file is not None
        return spool.reader_over(self._file)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def close_documents(documents: list[IncomingDocument]) -> None:
    """Close every temporary file of ``documents`` (none of them is read afterwards)."""
    for document in documents:
        document.close()


def _starts_like_pdf(stream: IO[bytes]) -> bool:
    # bytes.lstrip() semantics (ASCII whitespace) without reading more than a piece at a time.
    while chunk := stream.read(64 * 1024):
        rest = chunk.lstrip()
        if rest:
            return (rest + stream.read(8))[:5] == b"%PDF-"
    return False


def check_pdf(content: bytes | IncomingDocument, field: str, max_bytes: int) -> None:
    """Refuse anything that is not a readable PDF within the size limit (by content, not name).

    A file-backed document is read from its file: pypdf seeks to the parts it needs (the
    cross-reference table, the page tree) and never holds an attachment's stream.
    """
    size = len(content) if isinstance(content, bytes) else content.size
    if size > max_bytes:
        raise TooLarge("document_too_large", f"The document is larger than {max_bytes // (1024 * 1024)} MB.",
                       field)
    stream = io.BytesIO(content) if isinstance(content, bytes) else content.open()
    if not _starts_like_pdf(stream):
        raise LetterRejected("not_a_pdf", "The document is not a PDF file.", field)
    stream.seek(0)
    try:
        reader = PdfReader(stream)
        if reader.is_encrypted:
            raise LetterRejected("encrypted_pdf", "The PDF is password-protected; send it unprotected.", field)
        if len(reader.pages) < 1:
            raise LetterRejected("not_a_pdf", "The PDF has no pages.", field)
    except BridgeError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise LetterRejected("not_a_pdf", f"The PDF cannot be read ({type(exc).__name__}).", field) from None


def _spooled_base64(services: Services, decoded: spool.SpooledBase64, field: str) -> IncomingDocument:
    """A document whose base64 text was decoded into a temporary file while the body was read."""
    limit = services.settings.max_document_bytes
    if decoded.sink.error == spool.TOO_LARGE:
        raise TooLarge("document_too_large", f"The document is larger than {limit // (1024 * 1024)} MB.",
                       field)
    if decoded.sink.error is not None:
        raise LetterRejected("invalid_base64", "content_base64 is not valid base64.", field)
    out = decoded.out
    return IncomingDocument(decoded.filename, out.rewound(), size=out.size, sha256=out.sha256)


def load_documents(services: Services, docs: list[DocumentIn],
                   spooled: Mapping[str, spool.SpooledBase64] | None = None) -> list[IncomingDocument]:
    """Decode or download every document of the request, checking each one.

    ``spooled`` maps the stand-ins that ``connector.api.bodies`` put in place of long
    ``content_base64`` strings to the files they were decoded into. On an error every temporary
    file made so far is closed.
    """
    settings = services.settings
    out: list[IncomingDocument] = []
    try:
        for index, doc in enumerate(docs):
            field = f"documents.{index}"
            if doc.content_base64 is not None and spooled and doc.content_base64 in spooled:
                decoded = spooled[doc.content_base64]
                decoded.filename = doc.filename
                document = _spooled_base64(services, decoded, field + ".content_base64")
                out.append(document)
                check_pdf(document, field + ".content_base64", settings.max_document_bytes)
            elif doc.content_base64 is not None:
                try:
                    content = base64.b64decode(doc.content_base64, validate=True)
                except (binascii.Error, ValueError):
                    raise LetterRejected("invalid_base64", "content_base64 is not valid base64.",
                                   field + ".content_base64") from None
                check_pdf(content, field + ".content_base64", settings.max_document_bytes)
                out.append(IncomingDocument(doc.filename, content))
            else:
                assert doc.url is not None
                out.append(_download(services, doc.filename, doc.url, field))
    except BaseException:
        close_documents(out)
        raise
    return out


def _download(services: Services, filename: str, url: str, field: str) -> IncomingDocument:
    """The document at ``url``, streamed into a temporary file (never more than a piece in memory)."""
    settings = services.settings
    target = spool.HashingFile(settings.data_dir / "spool")
    try:
        try:
            http.check_url(url, allow_private=settings.allow_private_urls)
            http.fetch_to(
                url,
                target.write,
                max_bytes=settings.max_document_bytes,
                allow_private=settings.allow_private_urls,
                timeout=settings.url_fetch_timeout_seconds,
            )
        except http.UnsafeUrl as exc:
            raise LetterRejected("url_not_allowed", f"The document URL {exc}.", field + ".url") from None
        except http.TooLarge as exc:
            raise TooLarge("document_too_large", f"The document at this URL is {exc}.",
                           field + ".url") from None
        except Exception as exc:  # noqa: BLE001 - any network failure is the client's URL problem
            raise LetterRejected("url_fetch_failed", f"The document could not be downloaded: {type(exc).__name__}.",
                           field + ".url") from None
        if target.size <= spool.MEMORY_BYTES:
            content = target.rewound().read()
            target.close()
            document = IncomingDocument(filename, content, source_url=url)
        else:
            document = IncomingDocument(filename, target.rewound(), source_url=url, size=target.size,
                                        sha256=target.sha256)
    except BaseException:
        target.close()
        raise
    try:
        check_pdf(document, field + ".url", settings.max_document_bytes)
    except BaseException:
        document.close()
        raise
    return document


def has_consent(session: Session, account_id: str, email: str) -> bool:
    """True when the account holds an unrevoked consent for this e-mail address."""
    found = session.scalar(
        select(Consent.id).where(
            Consent.account_id == account_id, Consent.email == email.lower(), Consent.revoked_at.is_(None)
        )
    )
    return found is not None


def safe_filename(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .") or "document"
    return cleaned if cleaned.lower().endswith(".pdf") else cleaned + ".pdf"


def create_letter(
    services: Services,
    session: Session,
    account_id: str,
    payload: LetterIn,
    documents: list[IncomingDocument],
    template: tuple[str, int] | None = None,
) -> tuple[Letter, dict[str, Any]]:
    """Store a letter, its documents and its submit job in the caller's transaction; returns the
    letter and its public shape (as its ``letter.queued`` event carries it).

    ``documents`` are the already-checked PDFs (uploads, downloads, or the rendered template).
    Raises LetterRejected (``consent_required``, a provider's refusal) or Unavailable before writing.
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

    provider_name, provider_settings = services.provider_settings(session, account_id)
    provider = services.provider(provider_name, provider_settings)
    letter_id = new_id("let")
    digests = [d.sha256 for d in documents]
    try:
        provider.check_letter(OutgoingLetter(
            id=letter_id,
            recipient=Recipient(type=recipient.type, email=recipient.email, first_name=recipient.first_name,
                                last_name=recipient.last_name, company=recipient.company),
            # A large document is read (from its file) only if the adapter asks for its bytes.
            documents=tuple(OutgoingDocument(d.filename, d.content if d.in_memory else d.reader, d.sha256)
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
        hooks = active_hooks(session, account_id)
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


def put_stream_in_background(blobs: Any, fileobj: IO[bytes], *, retain_until: datetime | None = None) -> Future[str]:
    """``blobs.put_stream(fileobj)`` on an archive writer thread, which then closes ``fileobj``."""
    from connector.lib import storage

    def write() -> str:
        with fileobj:
            return str(blobs.put_stream(fileobj, retain_until=retain_until))

    return storage.submit_write(write)


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
    proof: tuple[ProofRef, bytes, str] | None = None,
    failure: tuple[str, str] | None = None,
    public_url: str = "",
    new_letter_documents: list[Document] | None = None,
    hooks: list[Hook] | None = None,
) -> Event | None:
    """Move ``letter`` to ``status`` and write everything that goes with it.

    Returns the new event, or None when it changes nothing: a duplicate provider report
    (same ``provider_event_id``) or a transition the lifecycle does not allow (late, out of
    order, or after a final status). ``proof`` is (reference, bytes, storage key).
    ``new_letter_documents``: the rows of a letter being created (it has no proof yet), which
    saves re-reading them. ``hooks``: the account's active subscriptions, if the caller read them.
    """
    if provider_event_id is not None:
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
        ref, content, key = proof
        proof_row = Proof(
            letter_id=letter.id,
            kind=ref.kind,
            filename=ref.filename or f"{PROOF_KIND_BY_STATUS.get(status, ref.kind)}-{letter.id}.pdf",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            storage_key=key,
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
            # The queries autoflush the letter's changes and the proof added above, so they show.
            else letter_to_dict(session, letter, public_url)
        ),
        raw=raw,
    )
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
