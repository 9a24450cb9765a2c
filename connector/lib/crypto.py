"""Encryption at rest for provider credentials and webhook secrets (Fernet, key rotation)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Encryptor:
    """Encrypts with the first key, decrypts with any (``LRE_ENCRYPTION_KEYS`` = new,old,...)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt_json(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def decrypt_json(self, token: str) -> Any:
        """Raises InvalidToken when no configured key opens it."""
        return json.loads(self._fernet.decrypt(token.encode()))

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the newest key (``lre-bridge secrets rotate``)."""
        return self._fernet.rotate(token.encode()).decode()


__all__ = ["Encryptor", "InvalidToken"]
