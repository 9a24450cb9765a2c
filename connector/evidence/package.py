"""The evidence package: a BagIt bag (RFC 8493) plus a seal, delivered as one deterministic zip.

Layout inside ``<name>/``::

    bagit.txt, bag-info.txt                      bag declaration and descriptive metadata
    manifest-sha256.txt, manifest-sha512.txt     hash of every payload file under data/
    tagmanifest-sha256.txt, tagmanifest-sha512.txt  hash of the tag files above
    data/...                                     documents, proofs, journal, summary, access log
    seal/seal.json                               SHA-256 and SHA-512 of every tag file (RFC 8785)
    seal/seal.sig                                Ed25519 signature over the exact bytes of seal.json
    seal/seal-key.pem                            the public key, for convenience (trust the URL)
    seal/timestamp.tst                           RFC 3161 token over seal.sig (when a TSA is set)

The seal cannot be listed in the tag manifests it signs (it would sign itself), so ``seal/`` is an
unlisted tag directory, which BagIt allows; instead, the seal lists every tag file by hash. A
change to any payload file breaks a manifest, a change to a manifest breaks the seal, and a change
to the seal breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.evidence import formats
from connector.evidence.journal import iso, line_sha256
from connector.evidence.keys import key_fingerprint, public_key_pem

SOFTWARE_AGENT = "LRE Bridge evidence packager"

# Given the bytes of seal/seal.sig, returns a DER RFC 3161 TimeStampToken over them.
Timestamper = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class PayloadFile:
    """A file of the bag's payload; ``path`` is relative to ``data/`` (forward slashes)."""

    path: str
    content: bytes


@dataclass(frozen=True, slots=True)
class PackageInput:
    """Everything a package is made of, already read from the database and the blob store."""

    name: str
    letter_id: str
    payload: Sequence[PayloadFile]
    bagging_date: date
    sealed_at: datetime
    # Extra ``bag-info.txt`` fields, in order (Label -> value). Values are made single-line.
    bag_info: Mapping[str, str] = field(default_factory=dict)
    public_key_url: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    files: Mapping[str, bytes]  # path inside the bag -> bytes
    zip_bytes: bytes

    @property
    def filename(self) -> str:
        return self.name + ".zip"


def slug_words(text: str | None, max_length: int = 40) -> str:
    """``"mise en demeure - Dupont & fils"`` -> ``"MiseEnDemeureDupontFils"`` (ASCII, for file names)."""
    if not text:
        return ""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[A-Za-z0-9]+", ascii_text)
    return "".join(w[:1].upper() + w[1:] for w in words)[:max_length]


def package_name(kind: str | None, recipient: str | None, day: date) -> str:
    """``LRE_<template or type>_<recipient>_<YYYY-MM-DD>``, as the seed's naming convention says."""
    return f"LRE_{slug_words(kind) or 'Courrier'}_{slug_words(recipient) or 'Destinataire'}_{day.isoformat()}"


def safe_path_part(name: str) -> str:
    """A file name that needs no percent-encoding in a BagIt manifest and unzips anywhere."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._")
    return cleaned[:120] or "file"


def build_package(inp: PackageInput, signing_key: Ed25519PrivateKey, timestamper: Timestamper | None = None) -> Package:
    """Build the bag, seal it, and zip it. Pure: the same input and key give the same bytes
    (Ed25519 signatures are deterministic), except for the time-stamp token."""
    files: dict[str, bytes] = {}
    for item in inp.payload:
        path = "data/" + item.path
        if path in files:
            raise ValueError(f"two payload files at {path}")
        files[path] = item.content
    payload_paths = sorted(files)

    files[formats.BAGIT_TXT] = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    oxum = f"{sum(len(files[p]) for p in payload_paths)}.{len(payload_paths)}"
    info: dict[str, str] = {
        "Source-Organization": "LRE Bridge",
        "External-Identifier": inp.letter_id,
        "Bagging-Date": inp.bagging_date.isoformat(),
        "Bag-Software-Agent": SOFTWARE_AGENT,
        **inp.bag_info,
        "Payload-Oxum": oxum,
    }
    files[formats.BAG_INFO_TXT] = "".join(f"{k}: {_one_line(v)}\n" for k, v in info.items()).encode("utf-8")
    for manifest, algorithm in zip(formats.MANIFESTS, formats.HASH_ALGORITHMS, strict=True):
        files[manifest] = _manifest(files, payload_paths, algorithm)
    tag_paths = sorted([formats.BAGIT_TXT, formats.BAG_INFO_TXT, *formats.MANIFESTS])
    for manifest, algorithm in zip(formats.TAG_MANIFESTS, formats.HASH_ALGORITHMS, strict=True):
        files[manifest] = _manifest(files, tag_paths, algorithm)

    journal = files.get(formats.JOURNAL_PATH, b"").decode("utf-8").splitlines()
    seal = {
        "format": formats.SEAL_FORMAT,
        "bag": inp.name,
        "letter_id": inp.letter_id,
        "sealed_at": iso(inp.sealed_at),
        "algorithm": "Ed25519",
        "public_key_sha256": key_fingerprint(signing_key),
        "public_key_url": inp.public_key_url,
        "signature_file": formats.SEAL_SIG,
        "journal": {
            "path": formats.JOURNAL_PATH,
            "lines": len(journal),
            "last_line_sha256": line_sha256(journal[-1]) if journal else formats.GENESIS_HASH,
        },
        "files": {
            path: {alg: hashlib.new(alg, files[path]).hexdigest() for alg in formats.HASH_ALGORITHMS}
            for path in sorted([*tag_paths, *formats.TAG_MANIFESTS])
        },
    }
    seal_bytes = formats.canonical_json(seal)
    files[formats.SEAL_JSON] = seal_bytes
    files[formats.SEAL_SIG] = base64.b64encode(signing_key.sign(seal_bytes)) + b"\n"
    files[formats.SEAL_PUBLIC_KEY] = public_key_pem(signing_key)
    if timestamper is not None:
        files[formats.SEAL_TIMESTAMP] = timestamper(files[formats.SEAL_SIG])
    moment = (inp.bagging_date.year, inp.bagging_date.month, inp.bagging_date.day, 0, 0, 0)
    return Package(name=inp.name, files=files, zip_bytes=zip_files(inp.name, files, moment))


def zip_files(root: str, files: Mapping[str, bytes], date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """A reproducible zip: sorted entries under ``root/``, one fixed timestamp, fixed permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            entry = zipfile.ZipInfo(f"{root}/{path}", date_time=date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # Unix, so that the permissions above are honoured
            archive.writestr(entry, files[path])
    return buffer.getvalue()


def _manifest(files: Mapping[str, bytes], paths: Sequence[str], algorithm: str) -> bytes:
    lines = (f"{hashlib.new(algorithm, files[p]).hexdigest()}  {p}\n" for p in paths)
    return "".join(lines).encode("utf-8")


def _one_line(value: str) -> str:
    # bag-info.txt values may be folded, but a plain single line is what every reader handles.
    return " ".join(str(value).split())
