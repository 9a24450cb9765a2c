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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.evidence import formats
from connector.evidence.journal import iso, line_sha256
from connector.evidence.keys import key_fingerprint, public_key_pem

CHUNK_BYTES = 256 * 1024
SOFTWARE_AGENT = "LRE Bridge evidence packager"

# Given the bytes of seal/seal.sig, returns a DER RFC 3161 TimeStampToken over them.
Timestamper = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class PayloadFile:
    """A file of the bag's payload; ``path`` is relative to ``data/`` (forward slashes).

    Either its ``content``, or (a large document or proof) ``opener``, a function giving a reader
    over its ``size`` bytes: such a file is copied into the zip in pieces, hashed on the way, and
    never held whole. The reader may raise at its end (the archive's own hash check).
    """

    path: str
    content: bytes = b""
    opener: Callable[[], IO[bytes]] | None = None
    size: int | None = None

    @property
    def length(self) -> int:
        return self.size if self.opener is not None and self.size is not None else len(self.content)


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
    """Build the bag, seal it, and zip it in memory. Pure: the same input and key give the same
    bytes (Ed25519 signatures are deterministic), except for the time-stamp token. For large
    payloads, ``write_package`` writes the same zip into a file instead."""
    buffer = io.BytesIO()
    tag_files = write_package(inp, signing_key, buffer, timestamper)
    files = {"data/" + item.path: item.content for item in inp.payload if item.opener is None}
    return Package(name=inp.name, files={**files, **tag_files}, zip_bytes=buffer.getvalue())


def write_package(inp: PackageInput, signing_key: Ed25519PrivateKey, out: IO[bytes],
                  timestamper: Timestamper | None = None) -> dict[str, bytes]:
    """Write the sealed bag as a zip into ``out`` (seekable: a temporary file, or memory) in one
    pass, in bounded memory whatever the payload's size; returns the tag and seal files.

    One pass is possible because of the order of the zip's entries (sorted paths): ``bagit.txt``
    and ``bag-info.txt`` come first and need only the payload's sizes (Payload-Oxum); then every
    ``data/`` file, hashed (SHA-256 and SHA-512) while it is copied; then the manifests, which
    need those hashes, the tag manifests and the seal, all of which sort after ``data/``.
    """
    payload: dict[str, PayloadFile] = {}
    for item in inp.payload:
        path = "data/" + item.path
        if path in payload:
            raise ValueError(f"two payload files at {path}")
        payload[path] = item
    payload_paths = sorted(payload)

    files: dict[str, bytes] = {}
    files[formats.BAGIT_TXT] = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    oxum = f"{sum(payload[p].length for p in payload_paths)}.{len(payload_paths)}"
    info: dict[str, str] = {
        "Source-Organization": "LRE Bridge",
        "External-Identifier": inp.letter_id,
        "Bagging-Date": inp.bagging_date.isoformat(),
        "Bag-Software-Agent": SOFTWARE_AGENT,
        **inp.bag_info,
        "Payload-Oxum": oxum,
    }
    files[formats.BAG_INFO_TXT] = "".join(f"{k}: {_one_line(v)}\n" for k, v in info.items()).encode("utf-8")
    moment = (inp.bagging_date.year, inp.bagging_date.month, inp.bagging_date.day, 0, 0, 0)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        first = sorted(files)
        if payload_paths and max(first) > payload_paths[0]:  # the one-pass order above relies on it
            raise ValueError("the bag's declaration files must sort before data/")
        for path in first:
            _zip_entry(archive, inp.name, path, moment, len(files[path]), iter((files[path],)))
        digests: dict[str, dict[str, str]] = {}
        for path in payload_paths:
            digests[path] = _zip_payload(archive, inp.name, path, moment, payload[path])
        for manifest, algorithm in zip(formats.MANIFESTS, formats.HASH_ALGORITHMS, strict=True):
            files[manifest] = "".join(f"{digests[p][algorithm]}  {p}\n" for p in payload_paths).encode("utf-8")
        tag_paths = sorted([formats.BAGIT_TXT, formats.BAG_INFO_TXT, *formats.MANIFESTS])
        for manifest, algorithm in zip(formats.TAG_MANIFESTS, formats.HASH_ALGORITHMS, strict=True):
            files[manifest] = _manifest(files, tag_paths, algorithm)

        journal_file = payload.get(formats.JOURNAL_PATH)
        journal_bytes = journal_file.content if journal_file is not None else b""
        journal = journal_bytes.decode("utf-8").splitlines()
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
        for path in sorted(set(files) - set(first)):
            _zip_entry(archive, inp.name, path, moment, len(files[path]), iter((files[path],)))
    return files


def _zip_entry(archive: zipfile.ZipFile, root: str, path: str, date_time: tuple[int, int, int, int, int, int],
               size: int, chunks: Iterator[bytes]) -> None:
    """One reproducible entry under ``root/``: one fixed timestamp, fixed permissions."""
    entry = zipfile.ZipInfo(f"{root}/{path}", date_time=date_time)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    entry.create_system = 3  # Unix, so that the permissions above are honoured
    entry.file_size = size  # as writestr sets it: decides zip64 the same way
    with archive.open(entry, "w") as dest:
        for chunk in chunks:
            dest.write(chunk)


def _zip_payload(archive: zipfile.ZipFile, root: str, path: str, date_time: tuple[int, int, int, int, int, int],
                 item: PayloadFile) -> dict[str, str]:
    """Copy one payload file into the zip, hashing it on the way; its hex digests by algorithm."""
    hashers = {alg: hashlib.new(alg) for alg in formats.HASH_ALGORITHMS}

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            for hasher in hashers.values():
                hasher.update(chunk)
            yield chunk

    if item.opener is None:
        _zip_entry(archive, root, path, date_time, len(item.content), hashed(iter((item.content,))))
    else:
        with item.opener() as reader:
            _zip_entry(archive, root, path, date_time, item.length,
                       hashed(iter(lambda: reader.read(CHUNK_BYTES), b"")))
    return {alg: hasher.hexdigest() for alg, hasher in hashers.items()}


def zip_files(root: str, files: Mapping[str, bytes], date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """A reproducible zip: sorted entries under ``root/``, one fixed timestamp, fixed permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            _zip_entry(archive, root, path, date_time, len(files[path]), iter((files[path],)))
    return buffer.getvalue()


def _manifest(files: Mapping[str, bytes], paths: Sequence[str], algorithm: str) -> bytes:
    lines = (f"{hashlib.new(algorithm, files[p]).hexdigest()}  {p}\n" for p in paths)
    return "".join(lines).encode("utf-8")


def _one_line(value: str) -> str:
    # bag-info.txt values may be folded, but a plain single line is what every reader handles.
    return " ".join(str(value).split())
