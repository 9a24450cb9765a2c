"""Consent collection: invitations, their certificates, the account's legal bases, the paper register.

The register itself (``POST/GET/DELETE /v1/consents``) lives in ``connector.api.core``; this
blueprint adds what fills it from the bridge's own consent page (``connector.api.consent_pages``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, EmailStr, Field, Strict, model_validator
from sqlalchemy import select

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.common import limit_arg, list_answer, page, parse_body, services
from connector.api.core import check_past_datetime, consent_to_dict
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.idempotency import idempotent
from connector.api.jsontypes import JsonDateTime, JsonInt
from connector.api.params import PageQuery, choice
from connector.api.registry import ListOf, documented, file_answer, json_answer
from connector.consent import service
from connector.consent.models import AccountLegalBases, ConsentInvitation
from connector.consent.models import PaperRequest as PaperRequestRow
from connector.models import Consent

bp = Blueprint("consents", __name__)

INVITATION_STATUSES: tuple[str, ...] = get_args(shapes.InvitationStatus)
PAPER_CHANNELS = ("registered_letter", "email", "hand_delivery", "general_assembly", "other")


def _date_time() -> Any:
    return Field(json_schema_extra={"format": "date-time"})


class BasisState(shapes.Shape):
    enabled: bool
    requires: str | None


class CondominiumBasisState(BasisState):
    enabled_at: shapes.DateTime | None = _date_time()
    enabled_by: str | None
    statement: str | None


class LegalBases(shapes.Shape):
    """The legal bases of the account's letters, as ``_bases_to_dict`` builds them."""

    object: Literal["legal_bases"]
    professional: BasisState
    consent: BasisState
    condominium: CondominiumBasisState


class PaperRequest(shapes.Shape):
    """A co-owner's request for paper, as ``_paper_to_dict`` builds it."""

    id: str
    object: Literal["paper_request"]
    email: str
    name: str | None
    requested_at: shapes.DateTime | None = _date_time()
    received_via: Literal[PAPER_CHANNELS]
    note: str | None
    recorded_by: str
    status: Literal["active", "withdrawn"]
    created_at: shapes.DateTime | None = _date_time()
    withdrawn_at: shapes.DateTime | None = _date_time()
    withdrawn_by: str | None


_TAGS = ("Consent",)
_PDF = file_answer("The PDF", "application/pdf")


InvitationStatusChoice = choice(INVITATION_STATUSES)


class InvitationListQuery(PageQuery):
    email: str | None = None
    status: InvitationStatusChoice = None


class PaperRequestListQuery(PageQuery):
    email: str | None = None


class WithdrawQuery(BaseModel):
    withdrawn_by: str | None = None


class InvitationIn(BaseModel):
    """The body of ``POST /v1/consents/invitations``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    name: str | None = Field(default=None, max_length=300, description="how the page addresses the person")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, max_length=2000, description="the sender's message, shown on the page")
    expires_in_days: JsonInt = Field(
        default=7, ge=3, le=30, description="3 to 30 days; silence then counts as refusal")
    language: Literal["fr", "en"] = "fr"

    @model_validator(mode="after")
    def _named(self) -> InvitationIn:
        if not (self.name or self.last_name):
            raise ValueError("give the person's name (or first_name and last_name)")
        return self

    @property
    def display_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p)


def _who() -> str:
    return f"api key {g.api_key.prefix}…"


@bp.post("/v1/consents/invitations")
@documented("Invite a person to consent (CPCE art. L.100)", operation_id="createConsentInvitation", tags=_TAGS,
            description="Returns a single-use link to the consent page the bridge hosts; the bridge e-mails "
                        "it when SMTP is configured, and the consent.invited event carries it otherwise.",
            body=InvitationIn, body_example=examples.INVITATION,
            answers={201: json_answer(shapes.ConsentInvitation, "Created")})
@require_api_key
@idempotent
def create_invitation() -> tuple[Response, int]:
    """Invite a person to consent; the answer lands in the register with its certificate."""
    data: InvitationIn = parse_body(InvitationIn)
    svc = services()
    invitation = service.create_invitation(
        svc, db_session(), g.account.id, email=data.email, name=data.display_name, first_name=data.first_name,
        last_name=data.last_name, message=data.message, language=data.language,
        expires_in_days=data.expires_in_days, created_by=_who(),
    )
    return jsonify(service.invitation_to_dict(svc, invitation)), 201


def _owned_invitation(invitation_id: str) -> ConsentInvitation:
    invitation = db_session().scalar(select(ConsentInvitation).where(
        ConsentInvitation.id == invitation_id, ConsentInvitation.account_id == g.account.id))
    if invitation is None:
        raise ApiError(404, "invitation_not_found", "No consent invitation with this id in your account.", "id")
    return invitation


@bp.get("/v1/consents/invitations")
@documented("List consent invitations", operation_id="listConsentInvitations", tags=_TAGS,
            query=InvitationListQuery, answers={200: ListOf(shapes.ConsentInvitation)})
@require_api_key
def list_invitations() -> Response:
    query = select(ConsentInvitation).where(ConsentInvitation.account_id == g.account.id)
    if request.args.get("email"):
        query = query.where(ConsentInvitation.email == request.args["email"].strip().lower())
    status = request.args.get("status")
    if status:
        if status not in INVITATION_STATUSES:
            raise ApiError(400, "invalid_status", "status must be one of " + ", ".join(INVITATION_STATUSES) + ".",
                           "status")
        query = query.where(ConsentInvitation.status == status)
    rows, next_cursor = page(query, ConsentInvitation.created_at, ConsentInvitation.id, limit_arg())
    svc = services()
    return list_answer([service.invitation_to_dict(svc, r) for r in rows], next_cursor)


@bp.get("/v1/consents/invitations/<invitation_id>")
@documented("A consent invitation, its answer and proof", operation_id="getConsentInvitation", tags=_TAGS,
            answers={200: shapes.ConsentInvitation})
@require_api_key
def get_invitation(invitation_id: str) -> Response:
    """The invitation, its answer and the proof recorded with it."""
    return jsonify(service.invitation_to_dict(services(), _owned_invitation(invitation_id)))


def _pdf(storage_key: str, filename: str, sha256: str) -> Response:
    return Response(services().blobs.get(storage_key), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "X-Content-SHA256": sha256})


@bp.get("/v1/consents/invitations/<invitation_id>/certificate")
@documented("The certificate PDF of the answer", operation_id="getConsentCertificate", tags=_TAGS,
            answers={200: _PDF})
@require_api_key
def invitation_certificate(invitation_id: str) -> Response:
    """The certificate PDF of the answer (acceptance or refusal)."""
    invitation = _owned_invitation(invitation_id)
    if not invitation.certificate_storage_key or not invitation.certificate_sha256:
        raise ApiError(404, "certificate_not_found", "This invitation has not been answered yet.", "id")
    return _pdf(invitation.certificate_storage_key, f"certificat-{invitation.id}.pdf", invitation.certificate_sha256)


@bp.get("/v1/consents/<consent_id>")
@documented("One register entry (with its invitation and proof)", operation_id="getConsent", tags=_TAGS,
            answers={200: shapes.Consent})
@require_api_key
def get_consent(consent_id: str) -> Response:
    """One register entry, with the invitation and proof behind it when the consent page collected it."""
    session = db_session()
    consent = session.scalar(select(Consent).where(Consent.id == consent_id, Consent.account_id == g.account.id))
    if consent is None:
        raise ApiError(404, "consent_not_found", "No consent with this id in your account.", "id")
    invitation = session.scalar(select(ConsentInvitation).where(ConsentInvitation.consent_id == consent.id))
    return jsonify(shapes.Consent.dump(**consent_to_dict(consent), invitation=(
        service.invitation_to_dict(services(), invitation) if invitation is not None else None)))


@bp.get("/v1/consents/<consent_id>/proof")
@documented("The register entry's proof document (the consent certificate)", operation_id="getConsentProof",
            tags=_TAGS, answers={200: _PDF})
@require_api_key
def consent_proof(consent_id: str) -> Response:
    """The register entry's proof document (the consent certificate for consents collected here)."""
    consent = db_session().scalar(select(Consent).where(Consent.id == consent_id, Consent.account_id == g.account.id))
    if consent is None:
        raise ApiError(404, "consent_not_found", "No consent with this id in your account.", "id")
    if not consent.proof_storage_key or not consent.proof_sha256:
        raise ApiError(404, "proof_not_found", "This register entry has no proof document.", "id")
    return _pdf(consent.proof_storage_key, consent.proof_filename or "consent-proof", consent.proof_sha256)


# --- legal bases ---------------------------------------------------------------------------------


class LegalBasesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    condominium: Annotated[bool, Strict()] = Field(
        description="send co-owners' notifications without consent (loi 65-557 art. 42-1)")
    statement: str | None = Field(default=None, max_length=2000,
                                  description="how co-owners were told they can keep paper (art. 42-1, para. 3)")

    @model_validator(mode="after")
    def _statement(self) -> LegalBasesIn:
        if self.condominium and not self.statement:
            raise ValueError("enabling the condominium basis needs a statement: how the syndic told co-owners "
                             "that they can ask for paper (loi n° 65-557 art. 42-1)")
        return self


_iso = shapes.iso  # one timestamp format for every answer


def _bases_to_dict(row: AccountLegalBases | None) -> dict[str, Any]:
    return LegalBases.dump(**{
        "object": "legal_bases",
        "professional": {"enabled": True, "requires": None},
        "consent": {"enabled": True, "requires": "the recipient's prior consent (CPCE art. L.100)"},
        "condominium": {
            "enabled": bool(row and row.condominium),
            "requires": "a co-owner who has not asked for paper (loi n° 65-557 art. 42-1)",
            "enabled_at": _iso(row.condominium_enabled_at) if row and row.condominium else None,
            "enabled_by": row.condominium_enabled_by if row and row.condominium else None,
            "statement": row.condominium_statement if row else None,
        },
    })


@bp.get("/v1/consents/legal-bases")
@documented("The legal bases this account's letters may rely on", operation_id="getLegalBases", tags=_TAGS,
            answers={200: LegalBases})
@require_api_key
def get_legal_bases() -> Response:
    """The bases this account's letters may rely on."""
    return jsonify(_bases_to_dict(db_session().get(AccountLegalBases, g.account.id)))


@bp.put("/v1/consents/legal-bases")
@documented("Opt in to (or out of) the condominium basis", operation_id="putLegalBases", tags=_TAGS,
            body=LegalBasesIn, body_example=examples.LEGAL_BASES, answers={200: LegalBases})
@require_api_key
def put_legal_bases() -> Response:
    """Opt in to (or out of) the condominium basis."""
    data: LegalBasesIn = parse_body(LegalBasesIn)
    session = db_session()
    now = services().clock()
    row = session.get(AccountLegalBases, g.account.id, with_for_update=True)
    if row is None:
        row = AccountLegalBases(account_id=g.account.id, condominium=False, updated_at=now)
        session.add(row)
    if data.condominium and not row.condominium:
        row.condominium_enabled_at, row.condominium_enabled_by = now, _who()
    row.condominium = data.condominium
    if data.statement is not None:
        row.condominium_statement = data.statement
    row.updated_at = now
    session.commit()
    return jsonify(_bases_to_dict(row))


# --- the register of co-owners who asked for paper -----------------------------------------------


class PaperRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    name: str | None = Field(default=None, max_length=300)
    requested_at: JsonDateTime = Field(description="when the syndic received the request (its certain date)")
    received_via: Literal[PAPER_CHANNELS] = "registered_letter"  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)


def _paper_to_dict(row: PaperRequestRow) -> dict[str, Any]:
    return PaperRequest.dump(**{
        "id": row.id, "object": "paper_request", "email": row.email, "name": row.name,
        "requested_at": _iso(row.requested_at), "received_via": row.received_via, "note": row.note,
        "recorded_by": row.recorded_by, "status": "withdrawn" if row.withdrawn_at else "active",
        "created_at": _iso(row.created_at), "withdrawn_at": _iso(row.withdrawn_at), "withdrawn_by": row.withdrawn_by,
    })


@bp.post("/v1/consents/paper-requests")
@documented("Record a co-owner's request for paper (loi 65-557 art. 42-1)", operation_id="recordPaperRequest",
            tags=_TAGS, body=PaperRequestIn, body_example=examples.PAPER_REQUEST,
            answers={201: json_answer(PaperRequest, "Created")})
@require_api_key
@idempotent
def record_paper_request() -> tuple[Response, int]:
    """Record that a co-owner asked for paper: condominium-basis letters to them are refused."""
    data: PaperRequestIn = parse_body(PaperRequestIn)
    svc = services()
    check_past_datetime(data.requested_at, "requested_at", svc.clock())
    row = PaperRequestRow(account_id=g.account.id, email=data.email.lower(), name=data.name,
                       requested_at=data.requested_at, received_via=data.received_via, note=data.note,
                       recorded_by=_who(), created_at=svc.clock())
    session = db_session()
    session.add(row)
    session.flush()
    return jsonify(_paper_to_dict(row)), 201


@bp.get("/v1/consents/paper-requests")
@documented("The register of co-owners who asked for paper", operation_id="listPaperRequests", tags=_TAGS,
            query=PaperRequestListQuery, answers={200: ListOf(PaperRequest)})
@require_api_key
def list_paper_requests() -> Response:
    query = select(PaperRequestRow).where(PaperRequestRow.account_id == g.account.id)
    if request.args.get("email"):
        query = query.where(PaperRequestRow.email == request.args["email"].strip().lower())
    rows, next_cursor = page(query, PaperRequestRow.created_at, PaperRequestRow.id, limit_arg())
    return list_answer([_paper_to_dict(r) for r in rows], next_cursor)


@bp.delete("/v1/consents/paper-requests/<request_id>")
@documented("The co-owner accepts electronic notifications again (kept, marked withdrawn)",
            operation_id="withdrawPaperRequest", tags=_TAGS, query=WithdrawQuery, answers={200: PaperRequest})
@require_api_key
def withdraw_paper_request(request_id: str) -> Response:
    """The co-owner accepts electronic notifications again (kept in the register, marked withdrawn)."""
    session = db_session()
    row = session.scalar(select(PaperRequestRow).where(PaperRequestRow.id == request_id,
                                                    PaperRequestRow.account_id == g.account.id))
    if row is None:
        raise ApiError(404, "paper_request_not_found", "No paper request with this id in your account.", "id")
    if row.withdrawn_at is None:
        row.withdrawn_at = services().clock()
        row.withdrawn_by = (request.args.get("withdrawn_by") or _who())[:200]
    session.commit()
    return jsonify(_paper_to_dict(row))
