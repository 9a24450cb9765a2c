"""Evidence records (in the spirit of RFC 4998): keep a seal provable after its time-stamp's
certificate, or its hash algorithm, stops being trusted.

A record is a hash tree over many packages' seals (RFC 6962 hashing: leaf = SHA-256(0x00 ||
SHA-256(seal/seal.sig)), node = SHA-256(0x01 || left || right)) and a chain of RFC 3161
time-stamps: the first over the tree's root, each later one over the whole previous token (RFC
4998 §5.2, "time-stamp renewal"). Each renewal is made while the previous TSA certificate is still
valid, so the chain proves, link by link, that the seal existed at the first time-stamp's date,
even once the first certificate has long expired.

A letter's record (``lre-bridge-evidence-record/1``, JSON) carries only its own leaf and the path
to the root (a reduced hash tree), never the other letters' identifiers. This module is pure:
bytes in, findings out; ``connector.archive.records`` builds and renews records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.evidence.timestamp import TimestampError, TimestampInfo, verify_token

RECORD_FORMAT = "lre-bridge-evidence-record/1"
TREE_RULE = "RFC 6962: leaf = SHA-256(0x00 || SHA-256(seal/seal.sig)), node = SHA-256(0x01 || left || right)"


def leaf_hash(seal_sha256: str) -> bytes:
    """The tree leaf for a package whose seal/seal.sig has this SHA-256 (hex)."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(seal_sha256)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962 §2.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the leaf hashes (at least one)."""
    if not leaves:
        raise ValueError("a hash tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_root(leaves[:k]), tree_root(leaves[k:]))


def audit_path(leaves: Sequence[bytes], index: int) -> list[dict[str, str]]:
    """The siblings from leaf ``index`` up to the root, each with the side it stands on."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*audit_path(leaves[:k], index), {"side": "right", "sha256": tree_root(leaves[k:]).hex()}]
    return [*audit_path(leaves[k:], index - k), {"side": "left", "sha256": tree_root(leaves[:k]).hex()}]


def fold_path(leaf: bytes, path: Sequence[dict[str, str]]) -> bytes:
    """The root that ``leaf`` and its audit ``path`` lead to."""
    value = leaf
    for step in path:
        sibling = bytes.fromhex(step["sha256"])
        if step["side"] == "left":
            value = _node(sibling, value)
        elif step["side"] == "right":
            value = _node(value, sibling)
        else:
            raise ValueError(f"path step side must be left or right, not {step['side']!r}")
    return value


def timestamped_data(root: bytes, tokens: Sequence[bytes], index: int) -> bytes:
    """What time-stamp ``index`` of a chain is over: the root for the first, the previous token after."""
    return root if index == 0 else tokens[index - 1]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The outcome of checking a record against one package: problems make it invalid."""

    problems: list[str]
    timestamps: list[TimestampInfo]


def check_record(
    record: dict[str, Any],
    seal_sig: bytes,
    trusted_certificates: Sequence[bytes] = (),
    at: datetime | None = None,
) -> ChainCheck:
    """Check that ``record`` covers the package whose seal/seal.sig is ``seal_sig``, that its path
    leads to the root, and that its time-stamps form an unbroken renewal chain up to ``at``."""
    problems: list[str] = []
    infos: list[TimestampInfo] = []
    if record.get("format") != RECORD_FORMAT:
        return ChainCheck([f"not a {RECORD_FORMAT} evidence record"], [])
    leaf = record.get("leaf") or {}
    seal_sha256 = hashlib.sha256(seal_sig).hexdigest()
    if leaf.get("seal_sha256") != seal_sha256:
        problems.append("the evidence record is for another package (its leaf is not this seal/seal.sig)")
    try:
        root = bytes.fromhex(str(record.get("root_sha256", "")))
        reached = fold_path(leaf_hash(seal_sha256), record.get("path") or [])
    except (ValueError, KeyError, TypeError) as exc:
        return ChainCheck([*problems, f"the evidence record's hash tree is unreadable: {exc}"], [])
    if reached != root:
        problems.append("the hash tree path does not lead to the record's root (path or root altered)")
    try:
        tokens = [base64.b64decode(item["token"], validate=True) for item in record.get("archive_timestamps") or []]
    except (KeyError, TypeError, ValueError, binascii.Error):
        return ChainCheck([*problems, "the evidence record's time-stamps are not base64"], [])
    if not tokens:
        return ChainCheck([*problems, "the evidence record has no time-stamp"], [])
    for index in range(len(tokens)):
        try:
            info = verify_token(tokens[index], timestamped_data(root, tokens, index), trusted_certificates)
        except TimestampError as exc:
            what = "the root" if index == 0 else f"time-stamp {index}"
            problems.append(f"time-stamp {index + 1} (over {what}): {exc}")
            return ChainCheck(problems, infos)
        if infos:
            previous = infos[-1]
            if info.gen_time < previous.gen_time:
                problems.append(f"time-stamp {index + 1} is older than the one it renews")
            if previous.certificate_not_after and info.gen_time > previous.certificate_not_after:
                problems.append(
                    f"time-stamp {index + 1} ({info.gen_time.isoformat()}) was made after the certificate of "
                    f"time-stamp {index} had expired ({previous.certificate_not_after.isoformat()}): chain broken"
                )
        if info.certificate_not_before and info.gen_time < info.certificate_not_before:
            problems.append(f"time-stamp {index + 1} predates its TSA certificate")
        infos.append(info)
    last = infos[-1]
    if at is not None and last.certificate_not_after and at > last.certificate_not_after:
        problems.append(
            f"the latest time-stamp's certificate expired on {last.certificate_not_after.isoformat()} "
            "and the record was not renewed before"
        )
    return ChainCheck(problems, infos)


def load_record(data: bytes) -> dict[str, Any]:
    """Parse a record file; ValueError when it is not JSON."""
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError("an evidence record is a JSON object")
    return record
