"""AR24's request signatures and response encryption (pure functions, shared with the
local AR24-compatible test server)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connector.providers.ar24.protocol import DATE_FORMAT, PARIS


def _hex_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _iv(private_key: str) -> bytes:
    # IV = first 16 characters of hex SHA-256 of the hex SHA-256 of the private key. (One public
    # client uses the single hash here for decryption; it fails the documentation's test vector.)
    return _hex_sha256(_hex_sha256(private_key))[:16].encode()


def _signing_key(private_key: str) -> bytes:
    # PHP's openssl_encrypt truncates the 64-character hex digest to the 32 bytes AES-256 needs.
    return _hex_sha256(private_key)[:32].encode()


def _response_key(private_key: str, date: str) -> bytes:
    return _hex_sha256(date + private_key)[:32].encode()


def _encrypt(key: bytes, iv: bytes, plaintext: bytes) -> str:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def _decrypt(key: bytes, iv: bytes, ciphertext_b64: str | bytes) -> bytes:
    raw = base64.b64decode(ciphertext_b64, validate=False)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def sign_date(private_key: str, date: str) -> str:
    """The ``signature`` header for a request sent with ``date``."""
    return _encrypt(_signing_key(private_key), _iv(private_key), date.encode())


def encrypt_response(private_key: str, date: str, plaintext: bytes) -> str:
    """What AR24 does to a successful answer (used by the local AR24-compatible test server)."""
    return _encrypt(_response_key(private_key, date), _iv(private_key), plaintext)


def decrypt_response(private_key: str, date: str, body: str | bytes) -> bytes:
    """Decrypt a successful AR24 answer to the request sent with ``date``.

    Raises ValueError when the body is not valid ciphertext for this key and date.
    """
    return _decrypt(_response_key(private_key, date), _iv(private_key), body.strip())


def paris_date(moment: datetime) -> str:
    """``moment`` as AR24 wants it: Europe/Paris wall-clock time, ``YYYY-MM-DD HH:mm:ss``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS).strftime(DATE_FORMAT)


def parse_paris_date(value: Any) -> datetime | None:
    """An AR24 date field (Paris wall-clock ``Y-m-d H:i:s``) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.strptime(text[:19], DATE_FORMAT)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PARIS)
    return parsed.astimezone(UTC)
