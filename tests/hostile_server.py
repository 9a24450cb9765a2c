"""A loopback HTTP server whose answers misbehave: without end, trickling, or honest (tests of the
bounds on what the bridge reads from providers and document URLs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import server_thread

PIECE = b"%PDF-1.4\n" + b"0" * (64 * 1024 - 9)


class _Hostile(BaseHTTPRequestHandler):
    """``/endless``: a chunked body that never ends; ``/trickle``: a byte every 50 ms;
    ``/small``: an honest PDF."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0]
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        if path == "/small":
            self.send_header("Content-Length", str(len(PIECE)))
            self.end_headers()
            self.wfile.write(PIECE)
            return
        if path == "/trickle":
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"%PDF-1.4\n")
            try:
                while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"0")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(PIECE), PIECE))
        except OSError:  # the client gave up: what the test expects
            pass

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_hostile() -> Iterator[str]:
    """The server on a loopback port; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    thread = server_thread(server)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stopping.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
