"""Webhook receivers on loopback that note when each delivery arrives (tests and benchmarks).

``TimedReceiver`` answers 200 at once and records (arrival time, webhook-id, event type, letter id);
``HangingReceiver`` accepts the request and never answers (until it is stopped), like a subscriber
whose server is stuck: the bridge's request runs into its timeout.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import server_thread


@dataclass(frozen=True)
class Arrival:
    at: datetime
    webhook_id: str  # the event's id


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = server_thread(self._server)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class TimedReceiver(_Server):
    """Answers 200 immediately; ``arrivals`` in the order they came (HTTP/1.1 keep-alive)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                at = datetime.now(UTC)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.arrivals.append(Arrival(at, self.headers.get("webhook-id", "")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
                return

        super().__init__(Handler)

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


class HangingReceiver(_Server):
    """Reads each request, then holds it open without answering until ``stop``."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.received = 0
        self.open = 0
        self.max_open = 0  # the most requests it held at once
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.received += 1
                    receiver.open += 1
                    receiver.max_open = max(receiver.max_open, receiver.open)
                # Hold on until released or until the bridge gives up (its timeout closes the socket).
                while not receiver.released.wait(0.05):
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                        break
                with lock:
                    receiver.open -= 1

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
                return

        super().__init__(Handler)

    def stop(self) -> None:
        self.released.set()
        super().stop()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (fraction in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(int(round(fraction * len(ordered) + 0.5)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]
