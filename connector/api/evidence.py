"""Evidence and archive endpoints: the sealed package, the proofs one by one, the public seal key,
retention and deletion."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, current_app, g, jsonify
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.common import content_disposition, parse_body, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.files import blob_response, file_response
from connector.api.jsontypes import JsonInt
from connector.api.registry import Answer, documented, file_answer, json_answer, text_answer
from connector.evidence import formats
from connector.evidence.access import log_access, reader_name
from connector.evidence.assemble import collect_package_input, public_key_url, tsa_timestamper
from connector.evidence.journal import iso
from connector.evidence.keys import key_fingerprint, load_signing_key, public_key_pem, published_public_keys
from connector.evidence.package import safe_path_part, write_package
from connector.evidence.retention import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    delete_letter,
    retention_ends_at,
)
from connector.evidence.timestamp import TimestampError
from connector.letters.service import letter_to_dict
from connector.lib import spool
from connector.lib.storage import RetentionLocked
from connector.models import Account, Letter
from connector.models import Proof as ProofRow

bp = Blueprint("evidence", __name__)


class RetentionIn(BaseModel):
    """The body of ``PUT /v1/account/retention``."""

    model_config = ConfigDict(extra="forbid")

    retention_days: JsonInt = Field(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)


# The answers of this module, built through these shapes (closed: a renamed field fails a test).
class Proof(shapes.Shape):
    kind: shapes.ProofKind
    filename: str
    sha256: str
    size: int
    created_at: shapes.DateTime = Field(json_schema_extra={"format": "date-time"})
    url: str = Field(json_schema_extra={"format": "uri"})


class ProofList(shapes.Shape):
    object: Literal["list"]
    data: list[Proof]


class SealKey(shapes.Shape):
    object: Literal["seal_key"]
    algorithm: Literal["Ed25519"]
    public_key_pem: str
    sha256: str = Field(description="SHA-256 of the 32 raw public-key bytes")
    url: str = Field(json_schema_extra={"format": "uri"})
    fingerprint_url: str = Field(description="stable across key rotations", json_schema_extra={"format": "uri"})


class Retention(shapes.Shape):
    object: Literal["retention"]
    retention_days: int
    minimum_days: int
    maximum_days: int


_TAGS = ("Evidence",)


def _owned_letter(session: Session, letter_id: str) -> Letter:
    letter = session.scalar(select(Letter).where(Letter.id == letter_id, Letter.account_id == g.account.id))
    if letter is None:
        raise ApiError(404, "letter_not_found", "No letter with this id in your account.", "id")
    return letter


def _reader() -> str:
    return reader_name(g.api_key.id, g.api_key.name)


def _digest_header(sha256_hex: str) -> str:
    return "sha-256=" + base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _proof_to_dict(proof: ProofRow, public_url: str) -> dict[str, Any]:
    return Proof.dump(**{
        "kind": proof.kind,
        "filename": proof.filename,
        "sha256": proof.sha256,
        "size": proof.size,
        "created_at": iso(proof.created_at),
        "url": f"{public_url}/v1/letters/{proof.letter_id}/proofs/{proof.kind}",
    })


@bp.get("/v1/letters/<letter_id>/evidence")
@documented(
    "Download the sealed evidence package (BagIt zip)", tags=_TAGS,
    description="Documents, provider proofs, the hash-chained journal, a summary (FR/EN) and the access "
                "log, with SHA-256/SHA-512 manifests, an Ed25519 seal and, when a TSA is configured, an "
                "RFC 3161 time-stamp. Check it with `lre-bridge evidence verify`.",
    answers={200: file_answer("The package", "application/zip")}, errors={503: "Error"})
@require_api_key
def download_evidence(letter_id: str) -> Response:
    """The sealed evidence package (zip). The download itself is in the package's access log."""
    session = db_session()
    svc = services()
    letter = _owned_letter(session, letter_id)
    logged = log_access(session, account_id=g.account.id, letter_id=letter.id, what="evidence_package",
                        who=_reader())
    now = svc.clock()
    inp, key = collect_package_input(
        session,
        letter,
        settings=svc.settings,
        blobs=svc.blobs,
        now=now,
        letter_view=lambda row: letter_to_dict(session, row, svc.settings.public_url),
    )
    # Commit before sealing: the time-stamping authority may take seconds, and SQLite would be
    # locked all that time.
    session.commit()
    # Written to a temporary file in one pass (bounded memory whatever the documents' size), then
    # streamed from it: the answer's status, length and Digest are known before its first byte,
    # and a damaged archive object or an unreachable TSA is still an error answer, not a cut zip.
    target = spool.temporary_file(svc.settings.data_dir / "spool")
    try:
        write_package(inp, key, target, tsa_timestamper(svc.settings))
        size = target.tell()
        target.seek(0)
        digest = hashlib.sha256()
        while chunk := target.read(spool.CHUNK_BYTES):
            digest.update(chunk)
        target.seek(0)
    except BaseException as exc:
        target.close()
        # The package lists its own download, so the line was committed first; no package, no line.
        session.delete(logged)
        session.commit()
        if not isinstance(exc, TimestampError):
            raise
        raise ApiError(
            503,
            "timestamp_unavailable",
            f"The time-stamping authority did not answer properly ({exc}); try again later.",
        ) from None
    return file_response(
        target,
        size,
        mimetype="application/zip",
        headers={
            "Content-Disposition": content_disposition(inp.name + ".zip"),
            "Digest": _digest_header(digest.hexdigest()),
        },
    )


@bp.get("/v1/letters/<letter_id>/proofs")
@documented("List the provider's proofs of a letter", tags=_TAGS,
            answers={200: json_answer(ProofList, "The proofs")})
@require_api_key
def list_proofs(letter_id: str) -> Response:
    session = db_session()
    letter = _owned_letter(session, letter_id)
    proofs = session.scalars(select(ProofRow).where(ProofRow.letter_id == letter.id).order_by(ProofRow.created_at))
    public_url = services().settings.public_url
    return jsonify(ProofList.dump(object="list", data=[_proof_to_dict(p, public_url) for p in proofs]))


@bp.get("/v1/letters/<letter_id>/proofs/<kind>")
@documented("Download one proof (PDF, byte-exact as issued)", tags=_TAGS,
            answers={200: file_answer("The PDF", "application/pdf")})
@require_api_key
def download_proof(letter_id: str, kind: str) -> Response:
    """The proof PDF byte-exact as the provider issued it."""
    session = db_session()
    letter = _owned_letter(session, letter_id)
    proof = session.scalar(select(ProofRow).where(ProofRow.letter_id == letter.id, ProofRow.kind == kind))
    if proof is None:
        raise ApiError(404, "proof_not_found", f"This letter has no '{kind}' proof (yet).", "kind")
    # Logged once the answer is good: the access log records only reads that happened.
    return blob_response(
        services().blobs, proof.storage_key, proof.size, mimetype="application/pdf",
        headers={"Content-Disposition": content_disposition(safe_path_part(proof.filename)),
                 "Digest": _digest_header(proof.sha256)},
        **access_logging(session, letter.id, f"proof:{kind}", _reader()),
    )


def access_logging(session: Session, letter_id: str, what: str, who: str) -> dict[str, Callable[[], None]]:
    """``blob_response``'s hooks that write the access log line once the answer is good: in the
    request's session for an answer read whole, else in a transaction of its own at the end of
    the stream (the request's session is released before the stream starts)."""
    svc, account_id = services(), g.account.id
    state = {"streaming": False}

    def release() -> None:
        state["streaming"] = True
        session.rollback()

    def log() -> None:
        if state["streaming"]:
            with svc.db.transaction() as own:
                log_access(own, account_id=account_id, letter_id=letter_id, what=what, who=who)
        else:
            log_access(session, account_id=account_id, letter_id=letter_id, what=what, who=who)
            session.commit()

    return {"on_verified": log, "before": release}


def _public_key_pem() -> bytes:
    return public_key_pem(load_signing_key(services().settings))


@bp.get(formats.PUBLIC_KEY_PATH)
@documented("The seal public key (PEM), stable URL, no authentication", tags=_TAGS, security=[],
            answers={200: text_answer("PEM", "application/x-pem-file")})
def seal_key_pem() -> Response:
    """The bridge's seal public key (PEM), at a stable URL anyone can fetch without a key."""
    return Response(_public_key_pem(), mimetype="application/x-pem-file")


@bp.get(formats.KEY_BY_FINGERPRINT_PATH.replace("{fingerprint}", "<fingerprint>"))
@documented("One seal public key by fingerprint (current or retired), no authentication", tags=_TAGS,
            security=[], answers={200: text_answer("PEM", "application/x-pem-file")}, errors={404: None})
def seal_key_by_fingerprint(fingerprint: str) -> Response:
    """One key by its SHA-256 fingerprint, current or retired: the URL written in each package."""
    pem = published_public_keys(services().settings).get(fingerprint.lower())
    if pem is None:
        raise ApiError(404, "key_not_found", "The bridge publishes no seal key with this fingerprint.")
    return Response(pem, mimetype="application/x-pem-file")


@bp.get("/v1/evidence/public-key")
@documented("The seal public key and its fingerprint (no authentication)", tags=_TAGS, security=[],
            answers={200: json_answer(SealKey, "The key")})
def seal_key_json() -> Response:
    key = load_signing_key(services().settings)
    return jsonify(
        SealKey.dump(**{
            "object": "seal_key",
            "algorithm": "Ed25519",
            "public_key_pem": public_key_pem(key).decode(),
            "sha256": key_fingerprint(key),
            "url": public_key_url(services().settings),
            "fingerprint_url": public_key_url(services().settings, key_fingerprint(key)),
        })
    )


def _retention_body(account: Account) -> dict[str, Any]:
    return Retention.dump(**{
        "object": "retention",
        "retention_days": account.retention_days,
        "minimum_days": MIN_RETENTION_DAYS,
        "maximum_days": MAX_RETENTION_DAYS,
    })


@bp.get("/v1/account/retention")
@documented("How long evidence is kept after a letter ends", tags=_TAGS,
            answers={200: json_answer(Retention, "The retention")})
@require_api_key
def get_retention() -> Response:
    account = db_session().get(Account, g.account.id)
    assert account is not None
    return jsonify(_retention_body(account))


@bp.put("/v1/account/retention")
@documented("Set the retention (365 days at least; default 3650)", tags=_TAGS, body=RetentionIn,
            body_example=examples.RETENTION,
            answers={200: json_answer(Retention, "The new retention")})
@require_api_key
def put_retention() -> Response:
    """Set how long evidence is kept after a letter ends. Raising it extends every letter;
    lowering it applies to letters that end afterwards."""
    wanted: RetentionIn = parse_body(RetentionIn)
    session = db_session()
    account = session.get(Account, g.account.id)
    assert account is not None
    raised = wanted.retention_days > account.retention_days
    account.retention_days = wanted.retention_days
    if raised and services().blobs.enforces_retention:
        # The storage's locks of letters that ended already follow the raise (a job per page).
        from connector.archive.jobs import enqueue_account_relock

        enqueue_account_relock(session, account.id)
    session.commit()
    return jsonify(_retention_body(account))


@bp.delete("/v1/letters/<letter_id>")
@documented("Delete a letter and its evidence once its retention period is over", tags=_TAGS,
            answers={204: Answer("Deleted")},
            errors={409: "`letter_in_progress` or `retention_period_not_over`"})
@require_api_key
def delete_letter_view(letter_id: str) -> tuple[str, int]:
    """Delete a letter and its evidence, only once its retention period is over."""
    session = db_session()
    svc = services()
    letter = _owned_letter(session, letter_id)
    account = session.get(Account, g.account.id)
    assert account is not None
    ends = retention_ends_at(letter, account)
    if ends is None:
        raise ApiError(409, "letter_in_progress", "The letter is still in progress; it cannot be deleted.", "id")
    now: datetime = svc.clock()
    if now < ends:
        raise ApiError(
            409,
            "retention_period_not_over",
            f"This letter's evidence must be kept until {ends.date().isoformat()} (the account's "
            "retention period after the letter ended); it cannot be deleted before.",
            "id",
        )
    orphans = delete_letter(session, letter)
    session.commit()
    for key in orphans:
        try:
            svc.blobs.delete(key)
        except RetentionLocked as exc:
            # The storage's lock outlasts this letter's retention (a document shared with a later
            # letter, or a retention lowered while it was in progress): the rows
            # are gone, the object stays until the storage lets it go (a bucket lifecycle rule).
            current_app.logger.warning("archive object kept by the storage: %s", exc)
    return "", 204
