"""Request bodies in bounded memory: spooled to disk when large, and letters' base64 decoded as read.

A letter sent as JSON carries its PDFs as ``documents[].content_base64`` strings: 19 MB of PDF is
26 MB of text, which ``request.get_json`` would hold as the body, then as a Python string, then
decoded, all at once. Here a large body is first copied to a temporary file (``request_body``);
``letter_json`` then reads it once, in pieces, and every long ``content_base64`` string is decoded
straight into its own temporary file (``spool.Base64Sink``) while the rest of the JSON, now small,
is copied into a *skeleton* in which that string is replaced by a stand-in. The skeleton is parsed
by the same strict JSON reader as every other body, and ``letters.load_documents`` swaps each
stand-in for its decoded file. Stand-ins carry a random token of the request, so no client text
can pass for one.

The scanner only needs to find strings and follow the path to them; anything it cannot follow
(a body that is not UTF-8 JSON, more than ``MAX_SKELETON_BYTES`` of JSON outside long strings)
is parsed whole, as before.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Callable
from typing import IO, Any

from flask import Flask, g, request

from connector.api.common import services, strict_json_loads
from connector.lib import spool
from connector.lib.spool import CHUNK_BYTES, SpooledBase64

# Bodies up to this size are read into memory as before.
MEMORY_BODY_BYTES = spool.MEMORY_BYTES
# A content_base64 string longer than this is decoded into a file rather than kept in the skeleton.
LONG_STRING_BYTES = 64 * 1024
# JSON outside long strings beyond this is not a letter: the scanner stops and the body is read whole.
MAX_SKELETON_BYTES = 1024 * 1024
# A batch's rows (up to 5,000 recipients) are JSON outside long strings too.
MAX_BATCH_SKELETON_BYTES = 16 * 1024 * 1024

_STRUCTURE = re.compile(rb'[{}\[\]:,"]')
_STRING_STOP = re.compile(rb'["\\\x00-\x1f]')
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b", ord("f"): b"\f",
            ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")


class InvalidJson(ValueError):
    """The body is not JSON (the caller answers as for any unreadable JSON body)."""


def request_body(feed: Callable[[bytes], Any] | None = None) -> IO[bytes]:
    """The raw body at its start, read once: in memory when small, else copied in pieces to a
    temporary file that is closed when the request ends. The app's body limit applies as read.

    ``feed`` sees every piece as it is read (a signature check, a hash), so that whoever needs the
    raw bytes gets them in the same pass; a body read before is replayed to it from its copy."""
    cached: IO[bytes] | None = g.get("lre_body")
    if cached is None:
        length = request.content_length
        if length is not None and length <= MEMORY_BODY_BYTES:
            cached = io.BytesIO(request.get_data(cache=True))
            if feed is not None:
                feed(cached.getvalue())
        else:
            target = spool.temporary_file(services().settings.data_dir / "spool")
            g.lre_body = target  # closed at teardown, whatever happens next
            stream = request.stream  # werkzeug cuts it (413) past MAX_CONTENT_LENGTH, chunked or not
            while chunk := stream.read(CHUNK_BYTES):
                if feed is not None:
                    feed(chunk)
                target.write(chunk)
            cached = target
        g.lre_body = cached
    elif feed is not None:
        cached.seek(0)
        while chunk := cached.read(CHUNK_BYTES):
            feed(chunk)
    cached.seek(0)
    return cached


def body_sha256_into(digest: Any) -> None:
    """Feed the raw body to ``digest`` (a hashlib object) in pieces."""
    body = request_body()
    while chunk := body.read(CHUNK_BYTES):
        digest.update(chunk)


def _close_spooled(_exc: BaseException | None) -> None:
    for item in g.pop("lre_spooled", {}).values():
        item.close()
    body = g.pop("lre_body", None)
    if body is not None:
        body.close()


def install(app: Flask) -> None:
    """Close each request's spooled body and decoded strings when the request ends."""
    app.teardown_request(_close_spooled)


def batch_json() -> tuple[Any, dict[str, SpooledBase64]]:
    """A batch's JSON body, its long ``document`` and ``attachments[]`` ``content_base64`` strings
    decoded out of it (as ``letter_json``; its rows may take more room than a letter's fields)."""
    return letter_json(lists=("attachments",), singles=("document",), max_skeleton=MAX_BATCH_SKELETON_BYTES)


def letter_json(*, any_content_type: bool = False, lists: tuple[str, ...] = ("documents",),
                singles: tuple[str, ...] = (), max_skeleton: int = 0) -> tuple[Any, dict[str, SpooledBase64]]:
    """A letter's JSON body and the long ``content_base64`` strings decoded out of it.

    Returns ``(None, {})`` when the body is not JSON (as ``request.get_json(silent=True)``);
    raises ApiError (422) as ``strict_json_loads`` does for JSON it refuses. ``any_content_type``
    reads the body as JSON whatever its Content-Type (the signed intake: senders that sign bytes
    do not always label them). The documents are ``<list>[i].content_base64`` for each of ``lists``
    and ``<single>.content_base64`` for each of ``singles``, at the top level.
    """
    if not any_content_type and not request.is_json:
        return None, {}
    body = request_body()
    start = body.read(4)
    body.seek(0)
    settings = services().settings
    # Only UTF-8 without BOM is scanned; the other encodings JSON allows are read whole, as before.
    if len(start) < 4 or b"\x00" in start or start.startswith(b"\xef\xbb\xbf") or _small(body):
        try:
            return strict_json_loads(body.read()), {}
        except ValueError:
            return None, {}
    scanner = _Scanner(body, settings.data_dir / "spool", settings.max_document_bytes, lists=lists,
                       singles=singles, max_skeleton=max_skeleton or MAX_SKELETON_BYTES)
    spooled: dict[str, SpooledBase64] = g.setdefault("lre_spooled", {})
    try:
        skeleton = scanner.run(spooled)
    except InvalidJson:
        return None, {}
    try:
        return strict_json_loads(skeleton), spooled
    except ValueError:
        return None, {}


def _small(body: IO[bytes]) -> bool:
    if isinstance(body, io.BytesIO):
        return True
    body.seek(0, io.SEEK_END)
    size = body.tell()
    body.seek(0)
    return size <= MEMORY_BODY_BYTES


class _Scanner:
    """One pass over a JSON body: copies it to a skeleton, decoding long document strings out.

    The path is followed with a stack of frames ``[kind, key or index, expecting a key]``; the
    JSON's validity is left to the parser of the skeleton, which sees the same structure (a string
    is only ever replaced by another string).
    """

    def __init__(self, body: IO[bytes], directory: Any, max_bytes: int, *, lists: tuple[str, ...],
                 singles: tuple[str, ...], max_skeleton: int) -> None:
        self.body = body
        self.lists = lists
        self.singles = singles
        self.max_skeleton = max_skeleton
        self.directory = directory
        self.max_bytes = max_bytes
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.skeleton = bytearray()
        self.token = secrets.token_hex(16)

    def _fill(self) -> bool:
        """Read the next piece of the body (dropping what was consumed); False at the end."""
        if self.eof:
            return False
        chunk = self.body.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def run(self, spooled: dict[str, SpooledBase64]) -> bytes:
        stack: list[list[Any]] = []
        while True:
            if len(self.skeleton) > self.max_skeleton:
                # Not a letter's shape: copy the rest as it is (the parser decides).
                self.skeleton += self.buf[self.pos:]
                while chunk := self.body.read(CHUNK_BYTES):
                    self.skeleton += chunk
                return bytes(self.skeleton)
            found = _STRUCTURE.search(self.buf, self.pos)
            if found is None:
                self.skeleton += self.buf[self.pos:]
                self.pos = len(self.buf)
                if not self._fill():
                    return bytes(self.skeleton)
                continue
            at = found.start()
            self.skeleton += self.buf[self.pos:at]
            char = self.buf[at]
            self.pos = at + 1
            if char == ord('"'):
                self._string(stack, spooled)
                continue
            self.skeleton.append(char)
            if char == ord("{"):
                stack.append(["o", None, True])
            elif char == ord("["):
                stack.append(["a", 0, False])
            elif char in b"}]":
                if stack:
                    stack.pop()
            elif char == ord(":"):
                if stack and stack[-1][0] == "o":
                    stack[-1][2] = False
            elif stack:  # a comma
                top = stack[-1]
                if top[0] == "o":
                    top[2] = True
                else:
                    top[1] += 1

    def _is_document_content(self, stack: list[list[Any]]) -> bool:
        if not stack or stack[0][0] != "o" or stack[0][2]:
            return False
        top, inner = stack[0][1], stack[-1]
        if inner[0] != "o" or inner[1] != "content_base64" or inner[2]:
            return False
        if len(stack) == 3:  # <list>[i].content_base64
            return top in self.lists and stack[1][0] == "a"
        return len(stack) == 2 and top in self.singles  # <single>.content_base64

    def _need(self, count: int) -> None:
        while len(self.buf) - self.pos < count and self._fill():
            pass
        if len(self.buf) - self.pos < count:
            raise InvalidJson("the body ends inside a string")

    def _string(self, stack: list[list[Any]], spooled: dict[str, SpooledBase64]) -> None:
        """From just after an opening quote to just after its closing quote."""
        is_key = bool(stack) and stack[-1][0] == "o" and stack[-1][2]
        wanted = not is_key and self._is_document_content(stack)
        raw = bytearray()  # the string as written (escapes included), while it stays short
        target: SpooledBase64 | None = None
        name = ""
        while True:
            stop = _STRING_STOP.search(self.buf, self.pos)
            end = stop.start() if stop else len(self.buf)
            piece = self.buf[self.pos:end]
            self.pos = end
            if target is not None:
                target.sink.write(piece)
            else:
                raw += piece
                if wanted and len(raw) > LONG_STRING_BYTES:
                    name = f"lre-spooled-{self.token}-{len(spooled)}"
                    target = spooled[name] = SpooledBase64(self.directory, self.max_bytes)
                    _feed_raw(target, bytes(raw))
                    raw = bytearray()
            if stop is None:
                if not self._fill():
                    raise InvalidJson("the body ends inside a string")
                continue
            char = self.buf[self.pos]
            if char == ord('"'):
                self.pos += 1
                break
            if char != ord("\\"):
                raise InvalidJson("a control character inside a string")
            self._need(2)
            kind = self.buf[self.pos + 1]
            if kind == ord("u"):
                self._need(6)
                digits = self.buf[self.pos + 2:self.pos + 6]
                if not _HEX.fullmatch(digits):
                    raise InvalidJson("a bad \\u escape")
                code = int(digits, 16)
                escape, decoded = self.buf[self.pos:self.pos + 6], bytes([code]) if code < 128 else None
            elif kind in _ESCAPES:
                escape, decoded = self.buf[self.pos:self.pos + 2], _ESCAPES[kind]
            else:
                raise InvalidJson("a bad escape")
            self.pos += len(escape)
            if target is None:
                raw += escape  # kept as written: the skeleton reproduces the string exactly
            elif decoded is None:
                target.sink.fail("content_base64 is not valid base64.")  # not ASCII, so not base64
            else:
                target.sink.write(decoded)
        if target is not None:
            target.sink.finish()
            self.skeleton += b'"' + name.encode() + b'"'
            return
        self.skeleton += b'"' + raw + b'"'
        if is_key:
            try:
                stack[-1][1] = json.loads(b'"' + raw + b'"') if len(raw) <= 64 else None
            except ValueError:
                stack[-1][1] = None


def _feed_raw(target: SpooledBase64, raw: bytes) -> None:
    """Feed the start of a long string, as written (its escapes whole), to a base64 sink."""
    if b"\\" not in raw:
        target.sink.write(raw)
        return
    try:
        text = json.loads(b'"' + raw + b'"')
    except ValueError:
        target.sink.fail("content_base64 is not valid base64.")
        return
    try:
        target.sink.write(text.encode("ascii"))
    except UnicodeEncodeError:
        target.sink.fail("content_base64 is not valid base64.")

