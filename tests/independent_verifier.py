"""A second, independent verifier of evidence packages, written from the published format only.

It shares no code with ``connector`` (no import from it, not even the canonical-JSON library):
if the writer and the bridge's own verifier agreed on a mistake, this one would disagree. It
checks the manifests, the seal (Ed25519 with ``cryptography``) and the journal chain, including
that each line is in RFC 8785 form, with its own small JCS serialiser.

Usage: python tests/independent_verifier.py <unzipped package folder> <public key PEM file>
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def jcs(value: Any) -> str:
    """RFC 8785 serialisation of JSON data (as parsed by ``json.loads``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _es6_number(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        # RFC 8785 §3.2.3: keys sorted by their UTF-16 code units.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"not JSON data: {type(value).__name__}")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jcs_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _es6_number(number: float) -> str:
    """ECMAScript Number.prototype.toString, which RFC 8785 prescribes for numbers."""
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinities are not JSON")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent = int(exponent) + (len(digit_tuple) - len(digits))
    k = len(digits)
    n = k + exponent  # position of the decimal point relative to the digits
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _manifest_problems(files: dict[str, bytes], manifest: str, algorithm: str) -> list[str]:
    problems = []
    for line in files[manifest].decode("utf-8").splitlines():
        digest, path = line.split(None, 1)
        if path not in files:
            problems.append(f"{path}: missing")
        elif hashlib.new(algorithm, files[path]).hexdigest() != digest:
            problems.append(f"{path}: {algorithm} mismatch in {manifest}")
    return problems


def verify(folder: Path, public_key_pem: bytes) -> list[str]:
    """Problems found in the unzipped bag at ``folder`` (empty list = valid)."""
    files = _files(folder)
    problems: list[str] = []
    for algorithm in ("sha256", "sha512"):
        for prefix in ("manifest", "tagmanifest"):
            name = f"{prefix}-{algorithm}.txt"
            if name not in files:
                problems.append(f"{name}: missing")
            else:
                problems += _manifest_problems(files, name, algorithm)
    listed = {line.split(None, 1)[1] for line in files.get("manifest-sha256.txt", b"").decode().splitlines()}
    problems += [f"{p}: not in the manifest" for p in files if p.startswith("data/") and p not in listed]

    # The seal: Ed25519 over the exact bytes of seal/seal.json, which lists every tag file's hashes.
    seal_bytes = files.get("seal/seal.json", b"")
    try:
        key = load_pem_public_key(public_key_pem)
        key.verify(base64.b64decode(files.get("seal/seal.sig", b"")), seal_bytes)  # type: ignore[union-attr]
        seal = json.loads(seal_bytes)
    except (InvalidSignature, ValueError):
        return problems + ["seal/seal.json: signature does not verify"]
    for path, digests in seal["files"].items():
        for algorithm, digest in digests.items():
            if hashlib.new(algorithm, files.get(path, b"")).hexdigest() != digest:
                problems.append(f"{path}: {algorithm} differs from the seal")
    tag_files = [p for p in files if "/" not in p]
    problems += [f"{p}: not covered by the seal" for p in tag_files if p not in seal["files"]]

    # The journal: canonical lines, each carrying the SHA-256 of the previous line's bytes.
    prev = "0" * 64
    lines = files.get("data/journal.jsonl", b"").decode("utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"data/journal.jsonl: line {number} is not JSON")
            break
        if jcs(record) != line:
            problems.append(f"data/journal.jsonl: line {number} is not canonical")
        if record.get("seq") != number or record.get("prev") != prev:
            problems.append(f"data/journal.jsonl: chain broken at line {number}")
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
    if seal["journal"]["lines"] != len(lines) or seal["journal"]["last_line_sha256"] != prev:
        problems.append("data/journal.jsonl: does not end where the seal says")
    return problems


if __name__ == "__main__":
    found = verify(Path(sys.argv[1]), Path(sys.argv[2]).read_bytes())
    print("\n".join(found) or "valid")
    sys.exit(1 if found else 0)
