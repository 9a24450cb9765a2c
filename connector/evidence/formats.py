"""The published formats of the evidence package: names and identifiers a verifier relies on.

Changing any value here changes the format; bump the version suffix instead of editing in place.
"""

from __future__ import annotations

from typing import Any

import rfc8785

JOURNAL_FORMAT = "lre-bridge-journal/1"
SEAL_FORMAT = "lre-bridge-seal/1"
GENESIS_HASH = "0" * 64

BAGIT_TXT = "bagit.txt"
BAG_INFO_TXT = "bag-info.txt"
MANIFESTS = ("manifest-sha256.txt", "manifest-sha512.txt")
TAG_MANIFESTS = ("tagmanifest-sha256.txt", "tagmanifest-sha512.txt")
HASH_ALGORITHMS = ("sha256", "sha512")

JOURNAL_PATH = "data/journal.jsonl"
ACCESS_LOG_PATH = "data/access-log.jsonl"
LETTER_JSON_PATH = "data/letter.json"
SEAL_JSON = "seal/seal.json"
SEAL_SIG = "seal/seal.sig"
SEAL_PUBLIC_KEY = "seal/seal-key.pem"
SEAL_TIMESTAMP = "seal/timestamp.tst"

PUBLIC_KEY_PATH = "/.well-known/lre-bridge/seal-key.pem"
# One URL per key, stable across rotations: what a package's seal points to.
KEY_BY_FINGERPRINT_PATH = "/.well-known/lre-bridge/seal-keys/{fingerprint}.pem"


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes: the only serialisation that is ever hashed or signed."""
    return rfc8785.dumps(value)
