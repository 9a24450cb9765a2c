"""The HTTP server's defence against slow clients: a request is received before it takes a thread.

gunicorn's threaded worker hands a connection to a thread as soon as one byte arrives; the thread
then reads the rest of the request, blocking. A client that trickles its headers or body (one
byte a second) holds a thread for as long as it likes, and as many such clients as there are
threads (8) make the whole API, ``/healthz`` included, time out.

``GuardedThreadWorker`` receives the request head, and a small body, in the worker's event loop
(non-blocking, no thread), within ``HEAD_SECONDS``; only a complete request goes to a thread. A
larger body is read by the thread at no less than ``MIN_BODY_BYTES_PER_SECOND`` (after a grace
of ``HEAD_SECONDS``); a client slower than that is cut off. Late clients get a JSON 408, an
oversized head a JSON 431, in the API's error shape.
"""

from __future__ import annotations

import ctypes
import json
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import http, util
from gunicorn.workers.gthread import ThreadWorker

HEAD_SECONDS = 10.0
MAX_HEAD_BYTES = 64 * 1024
# A body up to this size is received in the event loop with the head (JSON letters, hooks…).
BUFFERED_BODY_BYTES = 64 * 1024
MIN_BODY_BYTES_PER_SECOND = 50 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,15})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error answer in the API's JSON error shape, closing the connection."""
    body = json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


_TIMEOUT = error_bytes(408, "Request Timeout", "request_timeout",
                       f"The request was not received within {HEAD_SECONDS:.0f} seconds.")
_HEAD_TOO_LARGE = error_bytes(431, "Request Header Fields Too Large", "headers_too_large",
                              f"The request line and headers exceed {MAX_HEAD_BYTES // 1024} KB.")


class _DeadlineSocket:
    """The connection's socket as the request parser sees it: every read bounded by a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self.deadline = deadline

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client sent its request too slowly")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size)
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Receiving:
    """A connection whose request is being received in the event loop."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.started = time.monotonic()
        self.deadline = self.started + HEAD_SECONDS
        self.wanted: int | None = None  # the whole request's size, once the head says it


_JSON_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 431: "headers_too_large",
               500: "internal_error"}


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers (414, a malformed header…) in the API's JSON shape, not HTML."""
    code = _JSON_CODES.get(status_int, "bad_request" if status_int < 500 else "internal_error")
    message = "Something went wrong on our side." if status_int >= 500 else f"{reason}: {mesg}"[:500]
    util.write_nonblock(sock, error_bytes(status_int, reason, code, message))


# glibc's malloc, left to itself, gives each thread its own arena (up to 8 per core) and raises its
# mmap threshold after the first large free, so that the 256 KB pieces streamed by several request
# threads at once end up in arenas that keep their peak size. Two arenas and a fixed threshold
# (pieces that large are mapped and unmapped, returned at once) keep the process near its working
# set: measured with benchmarks/memory.py, see the README.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def tune_malloc() -> None:
    """Apply the allocator settings above (glibc only; anything else is left as it is)."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: glibc's mallopt when it is glibc
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, receiving each request head (and small body) without a thread."""

    def init_process(self) -> None:
        tune_malloc()
        self._receiving: dict[int, _Receiving] = {}
        # handle_error (in gunicorn's base worker) writes its answers through this one function.
        util.write_error = _write_json_error
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        # Bytes already read ahead (a pipelined request) are handled as gunicorn does.
        pending = conn.parser is not None and conn.parser.unreader.buf.getvalue()
        if pending or conn.is_http2 or self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        state = _Receiving(conn)
        conn.sock.setblocking(False)
        self._receiving[id(conn)] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, state))

    def _stop_receiving(self, state: _Receiving) -> None:
        self._receiving.pop(id(state.conn), None)
        try:
            self.poller.unregister(state.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _refuse(self, state: _Receiving, answer: bytes) -> None:
        self._stop_receiving(state)
        try:
            state.conn.sock.send(answer)  # best effort: the socket is non-blocking
        except OSError:
            pass
        self.nr_conns -= 1
        state.conn.close()

    def _on_readable(self, state: _Receiving, _sock: Any) -> None:
        try:
            data = state.conn.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._stop_receiving(state)
            self.nr_conns -= 1
            state.conn.close()
            return
        state.buffer += data
        if state.wanted is None:
            end = state.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(state.buffer) > MAX_HEAD_BYTES:
                    self._refuse(state, _HEAD_TOO_LARGE)
                return
            head = bytes(state.buffer[: end + 2])
            length = _CONTENT_LENGTH.search(head)
            body = int(length.group(1)) if length and not _CHUNKED.search(head) else 0
            # A large (or chunked) body is left to the thread, read at a minimum rate.
            state.wanted = end + 4 + (body if body <= BUFFERED_BODY_BYTES else 0)
            state.body = body  # type: ignore[attr-defined]
        if len(state.buffer) >= state.wanted:
            self._dispatch(state)

    def _dispatch(self, state: _Receiving) -> None:
        self._stop_receiving(state)
        conn = state.conn
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        body = getattr(state, "body", 0)
        unreader = conn.parser.unreader
        real = unreader.sock._sock if isinstance(unreader.sock, _DeadlineSocket) else unreader.sock
        unreader.sock = _DeadlineSocket(real, time.monotonic() + HEAD_SECONDS + body / MIN_BODY_BYTES_PER_SECOND)
        unreader.unread(bytes(state.buffer))
        conn.data_ready = True
        super().enqueue_req(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for state in [s for s in self._receiving.values() if s.deadline <= now]:
            self._refuse(state, _TIMEOUT)
