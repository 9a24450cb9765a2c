"""The bridge's Ed25519 sealing key: loaded from LRE_SIGNING_KEY_FILE or created once.

The private key never leaves this module's callers; the public key is published at a stable
URL so that a package can be checked years later without asking the bridge anything else.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connector.config import ConfigError, Settings

EMBEDDED_KEY_NAME = "seal-key.pem"
# After a key rotation, the operator drops the old *public* key here so that packages sealed
# with it can still be checked against a URL the bridge serves.
RETIRED_KEYS_DIR = "retired-seal-keys"


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The sealing key. A configured file must exist and hold an Ed25519 PKCS#8 PEM key;
    without one, a key is generated once into the data directory (mode 0600)."""
    if settings.signing_key_file is not None:
        path = Path(settings.signing_key_file)
        try:
            return _read_private_key(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"LRE_SIGNING_KEY_FILE: cannot read {path}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"LRE_SIGNING_KEY_FILE: {path} is not an Ed25519 PEM private key") from exc
    path = Path(settings.data_dir) / EMBEDDED_KEY_NAME
    if not path.exists():
        _create_key_file(path)
    return _read_private_key(path.read_bytes())


def _read_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 key")
    return key


def _create_key_file(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two workers starting together must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM (what ``openssl pkeyutl -pubin`` reads)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the 32 raw public-key bytes, hex: short enough to read over the phone."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def published_public_keys(settings: Settings) -> dict[str, bytes]:
    """Every public key the bridge vouches for, by fingerprint: the current one and retired ones."""
    current = load_signing_key(settings)
    keys = {key_fingerprint(current): public_key_pem(current)}
    folder = Path(settings.data_dir) / RETIRED_KEYS_DIR
    for path in sorted(folder.glob("*.pem")) if folder.is_dir() else ():
        public = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(public, Ed25519PublicKey):
            keys.setdefault(key_fingerprint(public), public_key_pem(public))
    return keys
