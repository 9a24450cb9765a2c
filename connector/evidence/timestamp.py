"""RFC 3161 time-stamps: ask a TSA for a token over some bytes, and check a token offline.

Requests and tokens are built and parsed with asn1crypto; signatures are checked with
cryptography. Checking a token proves that the TSA whose certificate is inside it signed this
hash at ``gen_time``; whether that TSA is to be trusted is a separate question answered by
``trusted_certificates`` (a qualified TSA's CA, from the EU trusted list, for instance).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import algos, cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

CONTENT_TYPE_QUERY = "application/timestamp-query"
CONTENT_TYPE_REPLY = "application/timestamp-reply"

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class _AnySequence(core.SequenceOf):
    _child_spec = core.Any


class TimestampError(Exception):
    """The TSA refused, or a token does not match the data, or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    gen_time: datetime
    serial_number: int
    policy: str
    tsa_subject: str
    # True only when the TSA certificate chains to one of the trusted certificates given.
    trusted: bool
    # The TSA certificate's validity: a time-stamp must be renewed before it ends (evidence records).
    certificate_not_before: datetime | None = None
    certificate_not_after: datetime | None = None


def make_request(data: bytes, nonce: int | None = None) -> tuple[bytes, int]:
    """A DER TimeStampReq for SHA-256(data), asking for the TSA certificate; returns (der, nonce)."""
    nonce = nonce if nonce is not None else secrets.randbits(63)
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(data).digest(),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return request.dump(), nonce


def read_response(response_der: bytes, data: bytes, nonce: int) -> bytes:
    """Check a TimeStampResp against what was asked and return the token (DER ContentInfo)."""
    try:
        # Parsed field by field: asn1crypto declares timeStampToken mandatory, but a refusal has none.
        parts = _AnySequence.load(response_der)
        status_info = tsp.PKIStatusInfo.load(parts[0].dump())
        status = status_info["status"].native
    except (ValueError, TypeError, IndexError) as exc:
        raise TimestampError(f"the TSA answer is not a TimeStampResp: {exc}") from exc
    if status not in ("granted", "granted_with_mods") or len(parts) < 2:
        text = " ".join(status_info["status_string"].native or []) if status_info["status_string"] else ""
        raise TimestampError(f"the TSA refused the request: {status} {text}".strip())
    token = cms.ContentInfo.load(parts[1].dump())
    token_der = token.dump()
    tst_info = _tst_info(token)
    if tst_info["nonce"].native != nonce:
        raise TimestampError("the TSA answered with another request's nonce")
    verify_token(token_der, data)
    return token_der


def request_timestamp(url: str, data: bytes, http_request: Callable[..., Any], timeout: float = 15.0) -> bytes:
    """POST a request for ``data`` to the TSA at ``url`` and return the checked token."""
    request_der, nonce = make_request(data)
    # The TSA URL is operator configuration (like the database URL), so private addresses are allowed.
    response = http_request(
        "POST",
        url,
        allow_private=True,
        timeout=timeout,
        data=request_der,
        headers={"Content-Type": CONTENT_TYPE_QUERY, "Accept": CONTENT_TYPE_REPLY},
    )
    if response.status_code != 200:
        raise TimestampError(f"the TSA answered HTTP {response.status_code}")
    return read_response(response.content, data, nonce)


def verify_token(token_der: bytes, data: bytes, trusted_certificates: Sequence[bytes] = ()) -> TimestampInfo:
    """Check that ``token_der`` time-stamps ``data`` and is signed by the certificate it carries.

    ``trusted_certificates`` are PEM or DER CA (or TSA) certificates; when given, the TSA
    certificate must be one of them or directly issued by one of them.
    """
    try:
        return _verify_token(token_der, data, trusted_certificates)
    except TimestampError:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1crypto parses lazily: a damaged byte can fail anywhere
        raise TimestampError(f"the time-stamp token is damaged ({type(exc).__name__}: {exc})") from exc


def _verify_token(token_der: bytes, data: bytes, trusted_certificates: Sequence[bytes]) -> TimestampInfo:
    token = cms.ContentInfo.load(token_der)
    tst_info = _tst_info(token)
    signed_data = token["content"]
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampError("a time-stamp token must have exactly one signer")
    signer = signer_infos[0]

    imprint = tst_info["message_imprint"]
    hash_name = imprint["hash_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise TimestampError(f"unsupported imprint hash {hash_name}")
    if imprint["hashed_message"].native != hashlib.new(hash_name, data).digest():
        raise TimestampError("the time-stamp was made over other data (message imprint differs)")

    encap = signed_data["encap_content_info"]["content"]
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampError(f"unsupported signer digest {digest_name}")
    attrs = {attr["type"].native: attr["values"][0] for attr in signer["signed_attrs"]}
    if (
        "message_digest" not in attrs
        or attrs["message_digest"].native != hashlib.new(digest_name, encap.contents).digest()
    ):
        raise TimestampError("the token's signed attributes do not match its TSTInfo")
    if attrs.get("content_type") is None or attrs["content_type"].native != "tst_info":
        raise TimestampError("the token's content type is not id-ct-TSTInfo")

    certificate = _signer_certificate(signed_data, signer)
    # Signed attributes are signed as a SET (tag 0x31), not with their [0] IMPLICIT tag.
    signed_bytes = b"\x31" + signer["signed_attrs"].dump()[1:]
    _check_signature(certificate, signer["signature_algorithm"], digest_name, signer["signature"].native, signed_bytes)
    _check_eku(certificate)
    return TimestampInfo(
        gen_time=tst_info["gen_time"].native,
        serial_number=tst_info["serial_number"].native,
        policy=tst_info["policy"].dotted,
        tsa_subject=certificate.subject.rfc4514_string(),
        trusted=_is_trusted(certificate, trusted_certificates),
        certificate_not_before=certificate.not_valid_before_utc,
        certificate_not_after=certificate.not_valid_after_utc,
    )


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    if token["content_type"].native != "signed_data":
        raise TimestampError("the token is not CMS SignedData")
    encap = token["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TimestampError("the token does not contain a TSTInfo")
    parsed = encap["content"].parsed
    if not isinstance(parsed, tsp.TSTInfo):
        parsed = tsp.TSTInfo.load(encap["content"].contents)
    return parsed


def _signer_certificate(signed_data: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate:
    sid = signer["sid"]
    for choice in signed_data["certificates"] or ():
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.issuer == wanted["issuer"] and cert.serial_number == wanted["serial_number"].native:
                return x509.load_der_x509_certificate(cert.dump())
        elif cert.key_identifier == sid.chosen.native:
            return x509.load_der_x509_certificate(cert.dump())
    raise TimestampError("the token does not include the TSA certificate")


def _check_signature(
    certificate: x509.Certificate,
    algorithm: algos.SignedDigestAlgorithm,
    digest_name: str,
    signature: bytes,
    signed_bytes: bytes,
) -> None:
    key = certificate.public_key()
    scheme = algorithm.signature_algo
    hash_algorithm = _HASHES[digest_name]()
    try:
        if scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), hash_algorithm)
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.AUTO)
            key.verify(signature, signed_bytes, pss, hash_algorithm)
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(hash_algorithm))
        elif scheme == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed_bytes)
        else:
            raise TimestampError(f"unsupported token signature {scheme} with this certificate")
    except InvalidSignature as exc:
        raise TimestampError("the TSA signature on the token does not verify") from exc


def _check_eku(certificate: x509.Certificate) -> None:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampError("the TSA certificate is not for time-stamping (no extended key usage)") from exc
    if ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
        raise TimestampError("the TSA certificate is not for time-stamping")


def _load_certificate(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)


def _is_trusted(certificate: x509.Certificate, trusted: Sequence[bytes]) -> bool:
    for raw in trusted:
        anchor = _load_certificate(raw)
        if anchor == certificate:
            return True
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
