"""A real webhook subscriber on loopback: an HTTP server in a thread with scripted answers.

Tests point hooks at ``receiver.url`` and script what it answers: fail the next N requests,
answer 410 Gone, ask for a pause with ``Retry-After``. Every request is recorded byte for byte.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import server_thread


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the receiver answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """Scripted answers are used in order; when none is left, ``default`` answers."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Answer()
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = server_thread(self._server)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def fail_next(self, count: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (then back to the default)."""
        with self._lock:
            self._script.extend(Answer(status, headers or {}, b"down") for _ in range(count))

    def always(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer every later request with ``status``."""
        with self._lock:
            self._script.clear()
            self.default = Answer(status, headers or {})

    def delivered(self) -> list[Received]:
        """The requests that were answered with a 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.answered < 300]

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver._next_answer()
                receiver._record(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, answer.status)
                )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
                return

        return Handler

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
