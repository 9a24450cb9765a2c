"""Webhook signatures as pure functions over raw bytes: no Flask, no database, no clock.

Two schemes:

* **Standard Webhooks** (https://www.standardwebhooks.com, v1 symmetric): headers ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature``; the signature is the base64 HMAC-SHA256 of
  ``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded bytes of a ``whsec_`` secret, written
  ``v1,<base64>``; the header is a space-separated list so that several secrets can sign during a
  rotation. Used for every delivery the bridge sends and accepted on the intake endpoint.
* **X-Signature** (GitHub style): ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, for
  senders that can only compute a plain HMAC. It carries no timestamp and no id, so callers use
  :func:`body_message_id` as the replay key.

Every verification failure, including any parse error, is a :class:`SignatureError`; callers answer
400 for :class:`MalformedHeader` and 401 for the others. The current time is always a parameter.
A large body is verified as it is read: ``start_verify_either`` checks the headers and returns a
:class:`BodyVerifier` that takes the body in pieces (the whole-body functions are built on it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
HEX_SIGNATURE_HEADER = "x-signature"

_MAX_ID_LENGTH = 255  # models.InboundMessage.message_id
_ID_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")  # int() would also accept "+1", " 1", "1_0"
_HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_MAX_SIGNATURES = 16


class SignatureError(Exception):
    """The request does not prove that it comes from the holder of the secret."""


class MissingHeader(SignatureError):
    """A required signature header is absent or empty."""


class MalformedHeader(SignatureError):
    """A signature header is present but cannot be parsed."""


class TimestampOutOfRange(SignatureError):
    """The signed timestamp is too old or too far in the future (replay or clock skew)."""


class NoMatchingSignature(SignatureError):
    """No signature in the request matches the body under any of the secrets."""


class InvalidSecret(ValueError):
    """A configured secret is not a valid ``whsec_`` secret (a server-side error, not the sender's)."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret of ``nbytes`` random bytes (the spec asks for 24 to 64)."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a secret must have between 24 and 64 random bytes")
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded bytes after the prefix."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"a secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("a secret must be base64 after its prefix") from exc
    if not key:
        raise InvalidSecret("a secret must not be empty")
    return key


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature, ``v1,<base64>``, of ``body`` as sent."""
    return "v1," + base64.b64encode(_hmac(key, _signed_content(msg_id, timestamp, body))).decode()


def sign_headers(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every key (newest first, for rotation)."""
    if not keys:
        raise InvalidSecret("at least one key is needed to sign")
    if not _ID_RE.match(msg_id) or "." in msg_id or len(msg_id) > _MAX_ID_LENGTH:
        raise ValueError("a message id must be printable ASCII without '.' or spaces")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(key, msg_id, timestamp, body) for key in keys),
    }


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _required(headers: Mapping[str, str], name: str) -> str:
    value = (headers.get(name) or "").strip()
    if not value:
        raise MissingHeader(f"missing {name} header")
    return value


def _parse_v1_signatures(header: str) -> list[bytes]:
    entries = header.split()
    if len(entries) > _MAX_SIGNATURES:
        raise MalformedHeader(f"{SIGNATURE_HEADER} has more than {_MAX_SIGNATURES} signatures")
    found: list[bytes] = []
    for entry in entries:
        version, comma, encoded = entry.partition(",")
        if not comma or not version or not encoded:
            raise MalformedHeader(f"{SIGNATURE_HEADER} entries must look like 'v1,<base64>'")
        if version != "v1":
            continue  # other schemes (e.g. v1a, asymmetric) are not ours to check: ignore them
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise MalformedHeader(f"{SIGNATURE_HEADER} has a v1 signature that is not base64") from exc
    return found


class BodyVerifier:
    """A verification whose headers are checked and whose body is given in pieces (``update``),
    so that a large body is verified as it is read, never held whole. ``finish`` compares every
    signature in constant time and returns the replay key, or raises NoMatchingSignature.

    Made by :func:`start_verify`, :func:`start_verify_hex` or :func:`start_verify_either`, which
    raise every header error (missing, malformed, stale) before a byte of the body is needed.
    """

    def __init__(self, macs: list[Any], signatures: Sequence[bytes], message_id: str | None) -> None:
        self._macs = macs  # one running HMAC per key
        self._signatures = signatures
        self._message_id = message_id  # None: the body's hash is the replay key (X-Signature)
        self._body_hash = hashlib.sha256() if message_id is None else None
        self._finished = False

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the raw body, as received."""
        if self._finished:
            raise RuntimeError("this verification is finished")
        for mac in self._macs:
            mac.update(chunk)
        if self._body_hash is not None:
            self._body_hash.update(chunk)

    def finish(self) -> str:
        """Check the signatures over everything fed; the message id (or body hash) when one matches."""
        self._finished = True
        if not _any_match((mac.digest() for mac in self._macs), self._signatures):
            raise NoMatchingSignature("no signature matches the body under the configured secrets")
        if self._body_hash is not None:
            return "sha256:" + self._body_hash.hexdigest()
        assert self._message_id is not None
        return self._message_id


def start_verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> BodyVerifier:
    """Check a Standard Webhooks request's headers; the body then goes to the returned verifier.

    ``keys`` are every currently valid secret (several during a rotation); ``headers`` may use any
    case. The timestamp must be within ``tolerance`` seconds of ``now`` on either side.
    """
    if not keys:
        raise InvalidSecret("no secret configured: refusing to verify (never fail open)")
    lowered = _lower(headers)
    msg_id = _required(lowered, ID_HEADER)
    raw_timestamp = _required(lowered, TIMESTAMP_HEADER)
    raw_signatures = _required(lowered, SIGNATURE_HEADER)
    if len(msg_id) > _MAX_ID_LENGTH or not _ID_RE.match(msg_id):
        raise MalformedHeader(f"{ID_HEADER} must be at most {_MAX_ID_LENGTH} printable ASCII characters")
    if not _TIMESTAMP_RE.match(raw_timestamp):
        raise MalformedHeader(f"{TIMESTAMP_HEADER} must be an integer number of seconds since 1970")
    timestamp = int(raw_timestamp)
    signatures = _parse_v1_signatures(raw_signatures)
    if timestamp < now - tolerance:
        raise TimestampOutOfRange("message timestamp too old")
    if timestamp > now + tolerance:
        raise TimestampOutOfRange("message timestamp too new")
    prefix = _signed_content(msg_id, timestamp, b"")
    return BodyVerifier([hmac.new(key, prefix, hashlib.sha256) for key in keys], signatures, msg_id)


def verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Check a Standard Webhooks request; return its message id, or raise a SignatureError.

    ``body`` is the raw request body, never re-serialised JSON (see :func:`start_verify`).
    """
    verifier = start_verify(keys, headers, now=now, tolerance=tolerance)
    verifier.update(body)
    return verifier.finish()


def sign_hex(key: bytes, body: bytes) -> str:
    """The ``X-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def start_verify_hex(keys: Sequence[bytes], headers: Mapping[str, str]) -> BodyVerifier:
    """Check an ``X-Signature: sha256=<hex>`` header (several values may be comma-separated); the
    body then goes to the returned verifier, whose ``finish`` returns :func:`body_message_id`."""
    if not keys:
        raise InvalidSecret("no secret configured: refusing to verify (never fail open)")
    raw = _required(_lower(headers), HEX_SIGNATURE_HEADER)
    entries = [entry for entry in re.split(r"[,\s]+", raw) if entry]
    if len(entries) > _MAX_SIGNATURES:
        raise MalformedHeader(f"X-Signature has more than {_MAX_SIGNATURES} signatures")
    signatures: list[bytes] = []
    for entry in entries:
        scheme, equals, digest = entry.partition("=")
        if scheme.lower() != "sha256" or not equals or not _HEX_RE.match(digest):
            raise MalformedHeader("X-Signature must look like 'sha256=<64 hex digits>'")
        signatures.append(bytes.fromhex(digest))
    return BodyVerifier([hmac.new(key, digestmod=hashlib.sha256) for key in keys], signatures, None)


def verify_hex(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes) -> None:
    """Check an ``X-Signature: sha256=<hex>`` request (several values may be comma-separated)."""
    verifier = start_verify_hex(keys, headers)
    verifier.update(body)
    verifier.finish()


def body_message_id(body: bytes) -> str:
    """The replay key of an ``X-Signature`` request, which has no id of its own: the body's hash."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _any_match(expected: Iterable[bytes], given: Sequence[bytes]) -> bool:
    # Every pair is compared (no early exit on the first secret) in constant time per pair.
    matched = False
    for mac in expected:
        for candidate in given:
            matched |= hmac.compare_digest(mac, candidate)
    return matched


def uses_standard_webhooks(headers: Mapping[str, str]) -> bool:
    """True when the request carries any Standard Webhooks header (else X-Signature is expected)."""
    lowered = _lower(headers)
    return any(name in lowered for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))


def start_verify_either(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> BodyVerifier:
    """Standard Webhooks if any of its headers is present, else ``X-Signature``: the headers are
    checked now, the body goes to the returned verifier, whose ``finish`` returns the replay key
    (the ``webhook-id``, or the body hash for ``X-Signature``)."""
    if uses_standard_webhooks(headers):
        return start_verify(keys, headers, now=now, tolerance=tolerance)
    if HEX_SIGNATURE_HEADER not in _lower(headers):
        if not keys:
            raise InvalidSecret("no secret configured: refusing to verify (never fail open)")
        raise MissingHeader("send webhook-id, webhook-timestamp and webhook-signature, or X-Signature")
    return start_verify_hex(keys, headers)


def verify_either(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Verify with Standard Webhooks if any of its headers is present, else with ``X-Signature``.

    Returns the replay key: the ``webhook-id``, or the body hash for ``X-Signature``.
    """
    verifier = start_verify_either(keys, headers, now=now, tolerance=tolerance)
    verifier.update(body)
    return verifier.finish()
